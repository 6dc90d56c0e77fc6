import assert from "node:assert/strict";
import { abortable, closeQuietly, writeAll } from "./io.ts";

Deno.test("writeAll() keeps writing until every byte is taken", async () => {
  const taken: number[] = [];
  const sink = {
    write: (data: Uint8Array) => {
      taken.push(...data.subarray(0, 3));
      return Promise.resolve(Math.min(3, data.length));
    },
  };
  await writeAll(sink, Uint8Array.from([1, 2, 3, 4, 5, 6, 7]));
  assert.deepEqual(taken, [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("abortable() settles with the promise when the signal stays quiet", async () => {
  assert.equal(await abortable(Promise.resolve(7), new AbortController().signal), 7);
  assert.equal(await abortable(Promise.resolve(8), undefined), 8);
  await assert.rejects(abortable(Promise.reject(new Error("boom")), undefined), /boom/);
});

Deno.test("abortable() rejects with the reason of an abort, before or during the wait", async () => {
  const reason = new Error("stopped");
  await assert.rejects(abortable(new Promise(() => {}), AbortSignal.abort(reason)), reason);
  const stop = new AbortController();
  const waiting = abortable(new Promise(() => {}), stop.signal);
  stop.abort(reason);
  await assert.rejects(waiting, reason);
});

Deno.test("closeQuietly() closes once, and ignores what is closed already or absent", () => {
  let closes = 0;
  const resource = {
    close: () => {
      closes++;
      if (closes > 1) throw new Deno.errors.BadResource("closed already");
    },
  };
  closeQuietly(resource);
  closeQuietly(resource);
  closeQuietly(null);
  closeQuietly(undefined);
  assert.equal(closes, 2);
});
