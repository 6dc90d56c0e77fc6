import assert from "node:assert/strict";
import { HttpError } from "./errors.ts";
import {
  MAX_FIELDS,
  readRequestHead,
  readResponseHead,
  requestFraming,
  responseFraming,
} from "./message.ts";
import { readerOf } from "./_test_util.ts";

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HttpError) return error.status;
    throw error;
  }
  return 0;
}

Deno.test("readRequestHead parses a request split over many reads", async () => {
  const reader = readerOf(
    "GET http://a.exa",
    "mple/x HTTP/1.1\r\nHo",
    "st: a.example\r\n",
    "\r\nNEXT",
  );
  const head = await readRequestHead(reader);
  assert.deepEqual(head, {
    method: "GET",
    target: "http://a.example/x",
    minor: 1,
    fields: [["Host", "a.example"]],
  });
  assert.equal(reader.buffered, 4, "the pipelined bytes stay buffered");
});

Deno.test("readRequestHead returns null at a clean end, 400 inside a head", async () => {
  assert.equal(await readRequestHead(readerOf()), null);
  assert.equal(await status(readRequestHead(readerOf("GET / HTTP/1.1\r\nA: b\r\n"))), 400);
});

Deno.test("readRequestHead refuses malformed request lines with 400 and other versions with 505", async () => {
  for (const line of ["GET  / HTTP/1.1", "GET /", "G(T / HTTP/1.1", "GET /a b HTTP/1.1"]) {
    assert.equal(await status(readRequestHead(readerOf(`${line}\r\n\r\n`))), 400, line);
  }
  assert.equal(await status(readRequestHead(readerOf("GET / HTTP/2.0\r\n\r\n"))), 505);
});

Deno.test("readRequestHead refuses obs-fold, space before colon, bare CR and bare LF (smuggling)", async () => {
  const cases = [
    "GET / HTTP/1.1\r\nA: b\r\n c: d\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
    "GET / HTTP/1.1\nA: b\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nA: \x01\r\n\r\n",
  ];
  for (const text of cases) {
    assert.equal(await status(readRequestHead(readerOf(text))), 400, JSON.stringify(text));
  }
});

Deno.test("readRequestHead names obs-fold as the reason", async () => {
  await assert.rejects(
    readRequestHead(readerOf("GET / HTTP/1.1\r\nA: b\r\n\tc: d\r\n\r\n")),
    /obsolete line folding/,
  );
});

Deno.test("readRequestHead limits the request line (414), field lines and sections (431)", async () => {
  const long = "x".repeat(9000);
  assert.equal(await status(readRequestHead(readerOf(`GET /${long} HTTP/1.1\r\n\r\n`))), 414);
  assert.equal(
    await status(readRequestHead(readerOf(`GET / HTTP/1.1\r\nA: ${long}\r\n\r\n`))),
    431,
  );
  const many = Array.from({ length: MAX_FIELDS + 1 }, (_, i) => `F${i}: v\r\n`).join("");
  assert.equal(await status(readRequestHead(readerOf(`GET / HTTP/1.1\r\n${many}\r\n`))), 431);
  const big = Array.from({ length: 90 }, (_, i) => `F${i}: ${"v".repeat(1000)}\r\n`).join("");
  assert.equal(await status(readRequestHead(readerOf(`GET / HTTP/1.1\r\n${big}\r\n`))), 431);
  // A line without end is refused once over the limit, not buffered until the stream ends.
  const endless = readerOf(...Array.from({ length: 100 }, () => "y".repeat(1000)));
  assert.equal(await status(readRequestHead(endless)), 414);
  assert.ok(endless.buffered < 20_000);
});

Deno.test("requestFraming refuses Content-Length with Transfer-Encoding and bad lengths (smuggling)", async () => {
  const framing = async (fields: string) =>
    requestFraming((await readRequestHead(readerOf(`POST / HTTP/1.1\r\n${fields}\r\n`)))!);
  const refused = [
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    "Content-Length: 5\r\nContent-Length: 6\r\n",
    "Content-Length: 5, 6\r\n",
    "Content-Length: -1\r\n",
    "Content-Length: 0x10\r\n",
    "Content-Length: 1 0\r\n",
    "Transfer-Encoding: gzip\r\n",
    "Transfer-Encoding: chunked, gzip\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: xchunked\r\n",
  ];
  for (const fields of refused) assert.equal(await status(framing(fields)), 400, fields);
  assert.deepEqual(await framing("Content-Length: 5\r\nContent-Length: 5\r\n"), {
    kind: "length",
    length: 5,
  });
  assert.deepEqual(await framing("transfer-encoding: Chunked\r\n"), { kind: "chunked" });
  assert.deepEqual(await framing(""), { kind: "none" });
});

Deno.test("responseFraming: none for HEAD/204/304, chunked wins over a length, else to the close", async () => {
  const head = (text: string) => readResponseHead(readerOf(`${text}\r\n\r\n`));
  assert.deepEqual(responseFraming("HEAD", await head("HTTP/1.1 200 OK\r\nContent-Length: 9")), {
    kind: "none",
  });
  assert.deepEqual(responseFraming("GET", await head("HTTP/1.1 304 Not Modified")), {
    kind: "none",
  });
  assert.deepEqual(
    responseFraming(
      "GET",
      await head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked"),
    ),
    { kind: "chunked" },
  );
  assert.deepEqual(responseFraming("GET", await head("HTTP/1.0 200 OK")), { kind: "close" });
  assert.deepEqual(responseFraming("GET", await head("HTTP/1.1 200 OK\r\nContent-Length: 3")), {
    kind: "length",
    length: 3,
  });
  assert.equal(await status(head("HTTP/1.1 200 OK\r\nA : b")), 502);
  assert.equal(await status(head("ICY 200 OK")), 502);
});
