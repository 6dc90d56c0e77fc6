import assert from "node:assert/strict";
import { copyBody, parseChunkSize } from "./body.ts";
import { HttpError } from "./errors.ts";
import { CollectingSink, readerOf } from "./_test_util.ts";

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HttpError) return error.status;
    throw error;
  }
  return 0;
}

Deno.test("copyBody streams a Content-Length body piece by piece and stops at its end", async () => {
  const sink = new CollectingSink();
  const reader = readerOf("hel", "lo wo", "rldGET");
  assert.equal(await copyBody({ framing: { kind: "length", length: 11 }, from: reader }, sink), 11);
  assert.equal(sink.text, "hello world");
  assert.equal(sink.writes.length, 3, "each piece is written as it arrives");
  assert.equal(reader.buffered, 3);
});

Deno.test("copyBody re-encodes a chunked body as it arrives, trailers included", async () => {
  const sink = new CollectingSink();
  const reader = readerOf("5;ext=1\r\nhel", "lo\r\n6\r\n wor", "ld\r\n0\r\nX-Sum: 1\r\n\r\nNEXT");
  assert.equal(await copyBody({ framing: { kind: "chunked" }, from: reader }, sink), 11);
  assert.equal(sink.text, "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n");
  assert.ok(sink.writes.length > 4, "written in pieces, not buffered whole");
  assert.equal(reader.buffered, 4);
});

Deno.test("copyBody decodes a chunked body for an HTTP/1.0 recipient", async () => {
  const sink = new CollectingSink();
  await copyBody({ framing: { kind: "chunked" }, from: readerOf("3\r\nabc\r\n0\r\n\r\n") }, sink, {
    dechunk: true,
  });
  assert.equal(sink.text, "abc");
});

Deno.test("copyBody refuses bad chunk sizes and framing (smuggling)", async () => {
  const bad = [
    "g\r\nabc\r\n0\r\n\r\n",
    " 3\r\nabc\r\n0\r\n\r\n",
    "3 \r\nabc\r\n0\r\n\r\n",
    "-3\r\nabc\r\n0\r\n\r\n",
    "0x3\r\nabc\r\n0\r\n\r\n",
    "+3\r\nabc\r\n0\r\n\r\n",
    "10000000000000000003\r\nabc\r\n0\r\n\r\n",
    "3\r\nabcd\r\n0\r\n\r\n",
    "3\nabc\r\n0\r\n\r\n",
    "3\r\nabc\r\n0\r\n",
    "3\r\nab",
    "3\r\nabc\r\n0\r\n bad\r\n\r\n",
  ];
  for (const text of bad) {
    const sink = new CollectingSink();
    assert.equal(
      await status(copyBody({ framing: { kind: "chunked" }, from: readerOf(text) }, sink)),
      400,
      text,
    );
  }
  assert.equal(
    await status(
      copyBody({ framing: { kind: "chunked" }, from: readerOf("z\r\n") }, new CollectingSink(), {
        errorStatus: 502,
      }),
    ),
    502,
  );
  assert.equal(parseChunkSize('1A;name="v"'), 26);
  // A size past 2^52 is refused as such, before any byte of the chunk is read.
  assert.throws(() => parseChunkSize("10000000000000000003"), /invalid chunk size/);
});

Deno.test("copyBody reports a Content-Length body cut short", async () => {
  assert.equal(
    await status(
      copyBody(
        { framing: { kind: "length", length: 10 }, from: readerOf("abc") },
        new CollectingSink(),
      ),
    ),
    400,
  );
});

Deno.test("copyBody copies a close-delimited body to the end of the stream", async () => {
  const sink = new CollectingSink();
  assert.equal(await copyBody({ framing: { kind: "close" }, from: readerOf("a", "bc") }, sink), 3);
  assert.equal(sink.text, "abc");
});
