import assert from "node:assert/strict";
import { readQueued } from "./stream.ts";

Deno.test("readQueued() takes what fits from the first chunk and keeps the rest", () => {
  const queue = [new Uint8Array([1, 2, 3]), new Uint8Array([4])];
  const buffer = new Uint8Array(2);
  assert.equal(readQueued(queue, buffer), 2);
  assert.deepEqual([...buffer], [1, 2]);
  assert.deepEqual(queue.map((chunk) => [...chunk]), [[3], [4]]);
});

Deno.test("readQueued() drops a chunk once it is all read, never reading past it", () => {
  const queue = [new Uint8Array([3]), new Uint8Array([4])];
  const buffer = new Uint8Array(4);
  assert.equal(readQueued(queue, buffer), 1);
  assert.equal(buffer[0], 3);
  assert.deepEqual(queue.map((chunk) => [...chunk]), [[4]]);
});
