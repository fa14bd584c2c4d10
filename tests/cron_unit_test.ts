// Cron expressions and time zones (lib/cron.ts), without a database; schedules are in orch_schedules_test.ts.
import assert from "node:assert/strict";
import { cronProblem, nextFiring } from "../lib/cron.ts";

Deno.test("cronProblem() accepts 5-field cron in an IANA zone and explains what it refuses", () => {
  assert.equal(cronProblem("*/5 * * * *", "Europe/Berlin"), null);
  assert.match(cronProblem("* * * *", "UTC")!, /exactly 5 fields/);
  assert.match(cronProblem("0 0 * * * *", "UTC")!, /exactly 5 fields/);
  assert.match(cronProblem("61 * * * *", "UTC")!, /.+/);
  assert.match(cronProblem("* * * * *", "Mars/Olympus")!, /unknown IANA time zone/);
});

Deno.test("nextFiring() honours the time zone", () => {
  // 09:00 in Tokyo (UTC+9, no DST) is 00:00 UTC.
  const next = nextFiring("0 9 * * *", "Asia/Tokyo", new Date("2026-03-01T12:00:00Z"))!;
  assert.equal(next.toISOString(), "2026-03-02T00:00:00.000Z");
  // 09:00 in New York on a summer day is 13:00 UTC.
  const ny = nextFiring("0 9 * * *", "America/New_York", new Date("2026-07-01T00:00:00Z"))!;
  assert.equal(ny.toISOString(), "2026-07-01T13:00:00.000Z");
});
