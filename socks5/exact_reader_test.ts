import assert from "node:assert/strict";
import { SocksProtocolError, TruncatedMessageError } from "./errors.ts";
import { ExactReader } from "./exact_reader.ts";
import type { ByteSource } from "./types.ts";

/** Yields the given chunks in order (each cut to the reader's buffer), then end of stream. */
class ChunkSource implements ByteSource {
  readonly #chunks: Uint8Array[];
  reads = 0;
  readSizes: number[] = [];
  constructor(...chunks: Uint8Array[]) {
    this.#chunks = chunks.map((c) => c.slice());
  }
  read(buffer: Uint8Array): Promise<number | null> {
    this.reads++;
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return Promise.resolve(null);
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#chunks.unshift(chunk.subarray(n));
    this.readSizes.push(n);
    return Promise.resolve(n);
  }
}

/** Yields one byte per read. */
function byteByByte(bytes: Uint8Array): ChunkSource {
  return new ChunkSource(...[...bytes].map((b) => Uint8Array.of(b)));
}

function sequence(length: number, start = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
}

Deno.test("ExactReader.readExact() returns exactly the bytes asked for from one chunk", async () => {
  const source = new ChunkSource(sequence(10));
  const reader = new ExactReader(source);
  assert.deepEqual(await reader.readExact(3), Uint8Array.of(0, 1, 2));
  assert.equal(reader.buffered, 7);
  assert.deepEqual(await reader.readExact(7), Uint8Array.of(3, 4, 5, 6, 7, 8, 9));
  assert.equal(reader.buffered, 0);
  assert.equal(source.reads, 1);
});

Deno.test("ExactReader.readExact() assembles a message delivered one byte per read", async () => {
  const source = byteByByte(sequence(300));
  const reader = new ExactReader(source);
  assert.deepEqual(await reader.readExact(1), Uint8Array.of(0));
  assert.deepEqual(await reader.readExact(299), sequence(299, 1));
  assert.equal(source.reads, 300);
  assert.equal(reader.buffered, 0);
});

Deno.test("ExactReader.readExact() with length 0 returns empty bytes without reading", async () => {
  const source = new ChunkSource();
  const reader = new ExactReader(source);
  assert.deepEqual(await reader.readExact(0), new Uint8Array(0));
  assert.equal(source.reads, 0);
});

Deno.test("ExactReader.readExact() returns a copy that later reads do not overwrite", async () => {
  const reader = new ExactReader(new ChunkSource(sequence(4), sequence(4, 100)));
  const first = await reader.readExact(4);
  const second = await reader.readExact(4);
  assert.deepEqual(first, Uint8Array.of(0, 1, 2, 3));
  assert.deepEqual(second, Uint8Array.of(100, 101, 102, 103));
  first[0] = 42;
  assert.equal(second[0], 100);
});

Deno.test("ExactReader.readExact() compacts the buffer when a message straddles its end", async () => {
  // Capacity 600 (the minimum); chunks of 500 force the second read to move leftovers down.
  const data = sequence(1500, 7);
  const reader = new ExactReader(
    new ChunkSource(data.subarray(0, 500), data.subarray(500, 1000), data.subarray(1000)),
    16,
  );
  const out: number[] = [];
  for (const length of [400, 400, 599, 101]) out.push(...await reader.readExact(length));
  assert.deepEqual(Uint8Array.from(out), data);
});

Deno.test("ExactReader.readExact() throws RangeError for more than its capacity", async () => {
  const reader = new ExactReader(new ChunkSource(sequence(10)), 600);
  await assert.rejects(reader.readExact(601), RangeError);
  const bigger = new ExactReader(new ChunkSource(sequence(2000)), 2000);
  assert.equal((await bigger.readExact(2000)).length, 2000);
});

Deno.test("ExactReader.readExact() throws TruncatedMessageError when the stream ends early", async () => {
  const reader = new ExactReader(byteByByte(sequence(3)));
  const error = await reader.readExact(4, "greeting").then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof TruncatedMessageError);
  assert.ok(error instanceof SocksProtocolError);
  assert.equal(error.reply, undefined);
  assert.match(error.message, /greeting/);
});

Deno.test("ExactReader.readExact() throws TruncatedMessageError on an empty stream", async () => {
  const reader = new ExactReader(new ChunkSource());
  await assert.rejects(reader.readByte(), TruncatedMessageError);
});

Deno.test("ExactReader.readByte() returns one byte at a time", async () => {
  const reader = new ExactReader(new ChunkSource(Uint8Array.of(5, 250)));
  assert.equal(await reader.readByte(), 5);
  assert.equal(await reader.readByte(), 250);
  await assert.rejects(reader.readByte("request"), /request/);
});

Deno.test("ExactReader.takeBuffered() returns and removes the bytes read past the message", async () => {
  const source = new ChunkSource(sequence(10), sequence(3, 200));
  const reader = new ExactReader(source);
  await reader.readExact(4);
  const rest = reader.takeBuffered();
  assert.deepEqual(rest, sequence(6, 4));
  assert.equal(reader.buffered, 0);
  assert.deepEqual(reader.takeBuffered(), new Uint8Array(0));
  // Reading continues from the source afterwards.
  assert.deepEqual(await reader.readExact(3), sequence(3, 200));
  // The taken bytes are a copy.
  rest[0] = 0;
  assert.equal(reader.buffered, 0);
});

Deno.test("ExactReader.takeBuffered() returns empty bytes when nothing is left over", async () => {
  const reader = new ExactReader(new ChunkSource(sequence(4)));
  await reader.readExact(4);
  assert.deepEqual(reader.takeBuffered(), new Uint8Array(0));
});

Deno.test("ExactReader reads from a real loopback TCP connection", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using server = await listener.accept();
  const data = sequence(700);
  const writing = (async () => {
    for (let i = 0; i < data.length; i += 100) {
      await client.write(data.subarray(i, i + 100));
    }
    await client.closeWrite();
  })();
  const reader = new ExactReader(server);
  assert.deepEqual(await reader.readExact(350), data.subarray(0, 350));
  assert.deepEqual(await reader.readExact(350), data.subarray(350));
  await assert.rejects(reader.readByte(), TruncatedMessageError);
  await writing;
});

Deno.test("ExactReader.withPrelude() reads the prelude first and keeps all of it, however long", async () => {
  const prelude = sequence(3000);
  const reader = ExactReader.withPrelude(new ChunkSource(sequence(5, 200)), prelude);
  assert.deepEqual(await reader.readExact(3), prelude.subarray(0, 3));
  // A relay takes the rest after the handshake: the whole prelude is there, then the source.
  assert.deepEqual(reader.takeBuffered(), prelude.subarray(3));
  assert.equal(reader.buffered, 0);
});
