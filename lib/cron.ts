// Cron expressions: 5-field cron in an IANA time zone, parsed and evaluated by croner. Depends
// on nothing else in Vox, so the configuration (VOX_DEMO_CRON) and the schedules can both use it.
import { Cron } from "croner";

/** Why a cron expression or time zone is unusable, or null when croner accepts both. */
export function cronProblem(expression: string, timezone = "UTC"): string | null {
  if (!isTimeZone(timezone)) return `unknown IANA time zone ${timezone}`;
  if (expression.trim().split(/\s+/).length !== 5) {
    return "needs exactly 5 fields: minute hour day month weekday";
  }
  try {
    new Cron(expression, { timezone, mode: "5-part", paused: true });
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** True for a time zone the runtime knows (e.g. Europe/Berlin, UTC). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The first firing of `expression` in `timezone` strictly after `after`, or null if none. */
export function nextFiring(expression: string, timezone: string, after: Date): Date | null {
  return new Cron(expression, { timezone, mode: "5-part", paused: true }).nextRun(after) ?? null;
}
