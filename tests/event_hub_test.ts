// The live-stream helper: a snapshot read after the stream subscribes loses nothing that is
// published while it is being read.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { EventHub, sseResponse } from "../lib/event_hub.ts";

async function readAll(res: Response): Promise<{ event: string; data: unknown }[]> {
  const text = await res.text();
  return text.split("\n\n").filter((b) => b.startsWith("event: ")).map((block) => {
    const lines = block.split("\n");
    return {
      event: lines[0].slice("event: ".length),
      data: JSON.parse(lines.find((l) => l.startsWith("data: "))!.slice("data: ".length)),
    };
  });
}

Deno.test("a change published while the snapshot is read follows the snapshot on the stream", async () => {
  const hub = new EventHub();
  const app = new Hono();
  app.get("/s", (c) =>
    sseResponse(
      c,
      hub,
      "job:1",
      "me",
      async () => {
        // The job is read as pending; meanwhile someone cancels it and the change is published.
        const snapshot = { status: "pending" };
        hub.publish("job:1", "status", { status: "cancelled" });
        await Promise.resolve();
        return [{ event: "status", data: snapshot }];
      },
      (_e, data) => (data as { status: string }).status === "cancelled",
    ));
  const events = await readAll(await app.request("/s"));
  assert.deepEqual(events, [
    { event: "status", data: { status: "pending" } },
    { event: "status", data: { status: "cancelled" } },
  ]);
  assert.equal(hub.openStreams, 0, "the stream's place is given back when it ends");
  assert.equal(hub.count("job:1"), 0);
});

Deno.test("fixed initial events come first and a final one ends the stream", async () => {
  const hub = new EventHub();
  const app = new Hono();
  app.get("/s", (c) =>
    sseResponse(
      c,
      hub,
      "job:2",
      "me",
      [{ event: "status", data: { status: "completed" } }],
      (_e, data) => (data as { status: string }).status === "completed",
    ));
  assert.deepEqual(await readAll(await app.request("/s")), [
    { event: "status", data: { status: "completed" } },
  ]);
});
