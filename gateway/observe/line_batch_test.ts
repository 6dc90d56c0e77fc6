import assert from "node:assert/strict";
import { LineBatch } from "./line_batch.ts";

const decoder = new TextDecoder();

function collector() {
  const writes: string[] = [];
  return { writes, write: (bytes: Uint8Array) => void writes.push(decoder.decode(bytes)) };
}

Deno.test("LineBatch writes many lines in one write, in order, after its delay", async () => {
  const { writes, write } = collector();
  const batch = new LineBatch(write, { delayMs: 10 });
  for (let i = 0; i < 100; i++) batch.push(`line ${i}\n`);
  assert.equal(writes.length, 0, "nothing written on the hot path");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(writes.length, 1);
  assert.equal(writes[0], Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
});

Deno.test("LineBatch writes at once for an urgent line, with the lines before it", () => {
  const { writes, write } = collector();
  const batch = new LineBatch(write, { delayMs: 60_000 });
  batch.push("info 1\n");
  batch.push("info 2\n");
  batch.push("error\n", true);
  assert.deepEqual(writes, ["info 1\ninfo 2\nerror\n"]);
  batch.flush();
  assert.equal(writes.length, 1, "an empty queue writes nothing");
});

Deno.test("LineBatch writes when the queue is full", () => {
  const { writes, write } = collector();
  const batch = new LineBatch(write, { maxBytes: 10, delayMs: 60_000 });
  batch.push("12345\n");
  assert.equal(writes.length, 0);
  batch.push("67890\n");
  assert.deepEqual(writes, ["12345\n67890\n"]);
});

Deno.test("log lines queued at exit are written (Deno.exit, as after SIGTERM)", async () => {
  const log = new URL("./log.ts", import.meta.url).href;
  const script = `
    import { logger, setupLogging } from ${JSON.stringify(log)};
    await setupLogging({ level: "info", format: "text" });
    const log = logger("test");
    for (let i = 0; i < 500; i++) log.info("line {i}", { i });
    Deno.exit(0);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "null",
    stderr: "piped",
  }).output();
  const lines = decoder.decode(out.stderr).split("\n").filter((line) => line.includes("line "));
  assert.equal(lines.length, 500);
  assert.match(lines[499]!, /line 499$/);
});
