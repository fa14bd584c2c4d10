// Eval sets share the workflow code (lib/workflows.ts); this names their operations.
import type { Sql } from "./db.ts";
import type { AuthUser } from "./roles.ts";
import {
  createItem,
  deleteItem,
  getItem,
  type Item,
  type ItemInput,
  listItems,
  updateItem,
} from "./workflows.ts";

export type EvalSet = Item;

/** An eval set the caller may see, else 404. */
export const getEvalSet = (sql: Sql, user: AuthUser | null, id: number): Promise<EvalSet> =>
  getItem(sql, "eval_set", user, id);
/** Lists eval sets (see listItems). */
export const listEvalSets = (sql: Sql, user: AuthUser, opts: Parameters<typeof listItems>[3]) =>
  listItems(sql, "eval_set", user, opts);
/** Creates an eval set in one of the caller's projects. */
export const createEvalSet = (
  sql: Sql,
  user: AuthUser,
  input: Omit<ItemInput, "provider">,
): Promise<EvalSet> => createItem(sql, "eval_set", user, input);
/** Changes an eval set the caller may edit. */
export const updateEvalSet = (
  sql: Sql,
  user: AuthUser,
  id: number,
  patch: Partial<ItemInput>,
): Promise<EvalSet> => updateItem(sql, "eval_set", user, id, patch);
/** Deletes an eval set the caller may edit. */
export const deleteEvalSet = (sql: Sql, user: AuthUser, id: number): Promise<void> =>
  deleteItem(sql, "eval_set", user, id);
