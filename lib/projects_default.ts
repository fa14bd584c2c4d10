import type { Db } from "./db.ts";

export const DEFAULT_PROJECT_NAME = "Default";

/** Gives a new user the personal project "Default" (SPEC §2); run in the user's creating transaction. */
export async function createDefaultProject(sql: Db, userId: number): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    INSERT INTO projects (name, owner_user_id, created_by)
    VALUES (${DEFAULT_PROJECT_NAME}, ${userId}, ${userId})
    RETURNING id`;
  return row.id;
}
