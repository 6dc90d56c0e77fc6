import assert from "node:assert/strict";
import { readAll, writeAll } from "../../tests/helpers/streams.ts";
import {
  relay,
  relayBufferStats,
  type RelayConn,
  type RelayOptions,
  type RelayResult,
  transferComplete,
} from "./relay.ts";

/** A connected loopback TCP pair: `[connecting side, accepted side]`. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [connected, accepted] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  return [connected, accepted];
}

/**
 * The test's two ends (`client`, `server`) and the relay running between them. The relay owns
 * and closes its two sockets; `dispose` closes the test's.
 */
interface Harness extends AsyncDisposable {
  client: Deno.TcpConn;
  server: Deno.TcpConn;
  /** The relay's own sockets, to check that it closed them. */
  relayClient: Deno.TcpConn;
  relayServer: Deno.TcpConn;
  result: Promise<RelayResult>;
}

async function startRelay(options: RelayOptions = {}): Promise<Harness> {
  const [client, relayClient] = await tcpPair();
  const [relayServer, server] = await tcpPair();
  const result = relay(relayClient, relayServer, options);
  return {
    client,
    server,
    relayClient,
    relayServer,
    result,
    async [Symbol.asyncDispose]() {
      await result;
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch { /* closed by the test */ }
      }
    },
  };
}

/** Reads until end of stream or an error (a reset); returns the byte count. */
async function drain(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return total;
      total += n;
    }
  } catch {
    return total;
  }
}

function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  }
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function assertClosed(conn: Deno.Conn): void {
  assert.throws(() => conn.close(), Deno.errors.BadResource);
}

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("relay() copies 5 MiB each way concurrently, byte for byte", async () => {
  await using h = await startRelay();
  const size = 5 * 1024 * 1024;
  const up = randomBytes(size);
  const down = randomBytes(size);
  const [, , receivedUp, receivedDown] = await Promise.all([
    writeAll(h.client, up).then(() => h.client.closeWrite()),
    writeAll(h.server, down).then(() => h.server.closeWrite()),
    readAll(h.server),
    readAll(h.client),
  ]);
  assert.equal(receivedUp.length, size);
  assert.equal(receivedDown.length, size);
  assert.equal(await sha256(receivedUp), await sha256(up));
  assert.equal(await sha256(receivedDown), await sha256(down));
  const result = await h.result;
  assert.deepEqual(result, { clientToServer: size, serverToClient: size, end: "closed" });
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
});

Deno.test("relay() passes a client half-close on and still delivers the server's reply", async () => {
  await using h = await startRelay();
  await writeAll(h.client, text("request"));
  await h.client.closeWrite();
  // The server sees end of stream only after the whole request, then answers.
  const request = await readAll(h.server);
  assert.equal(decode(request), "request");
  const reply = randomBytes(1024 * 1024 + 17);
  const replying = writeAll(h.server, reply).then(() => h.server.closeWrite());
  const received = await readAll(h.client);
  await replying;
  assert.equal(await sha256(received), await sha256(reply));
  assert.deepEqual(await h.result, {
    clientToServer: 7,
    serverToClient: reply.length,
    end: "closed",
  });
});

Deno.test("relay() passes a server half-close on and still carries the client's upload", async () => {
  await using h = await startRelay();
  await writeAll(h.server, text("banner"));
  await h.server.closeWrite();
  assert.equal(decode(await readAll(h.client)), "banner");
  await writeAll(h.client, text("late upload"));
  await h.client.closeWrite();
  assert.equal(decode(await readAll(h.server)), "late upload");
  assert.deepEqual(await h.result, { clientToServer: 11, serverToClient: 6, end: "closed" });
});

Deno.test("relay() delivers clientPrelude before anything the client sends", async () => {
  const [client, relayClient] = await tcpPair();
  const [relayServer, server] = await tcpPair();
  try {
    // The client's next bytes are already waiting when the relay starts.
    await writeAll(client, text("-body"));
    const result = relay(relayClient, relayServer, { clientPrelude: text("prelude") });
    await client.closeWrite();
    assert.equal(decode(await readAll(server)), "prelude-body");
    await server.closeWrite();
    assert.equal((await readAll(client)).length, 0);
    assert.deepEqual(await result, { clientToServer: 12, serverToClient: 0, end: "closed" });
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("relay() with an empty clientPrelude sends nothing extra", async () => {
  await using h = await startRelay({ clientPrelude: new Uint8Array(0) });
  await h.client.closeWrite();
  assert.equal((await readAll(h.server)).length, 0);
  await h.server.closeWrite();
  assert.deepEqual(await h.result, { clientToServer: 0, serverToClient: 0, end: "closed" });
});

Deno.test("relay() closes both sides after idleMs without traffic", async () => {
  const started = performance.now();
  await using h = await startRelay({ idleMs: 300 });
  const result = await h.result;
  const elapsed = performance.now() - started;
  assert.equal(result.end, "idle");
  assert.ok(elapsed >= 250, `ended after ${elapsed} ms`);
  assert.ok(elapsed < 1500, `ended after ${elapsed} ms`);
  assert.equal(result.clientToServer, 0);
  assert.equal(result.serverToClient, 0);
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
  // Both peers see the connection end.
  assert.equal(await drain(h.client), 0);
  assert.equal(await drain(h.server), 0);
});

Deno.test("relay() stays open while traffic flows and times out once it stops", async () => {
  await using h = await startRelay({ idleMs: 300 });
  const started = performance.now();
  let received = 0;
  const reading = drain(h.server).then((n) => (received = n));
  for (let i = 0; i < 8; i++) {
    await writeAll(h.client, Uint8Array.of(i));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const activeFor = performance.now() - started;
  const result = await h.result;
  await reading;
  assert.equal(result.end, "idle");
  assert.ok(performance.now() - started > activeFor, "ended only after traffic stopped");
  assert.equal(result.clientToServer, 8);
  assert.equal(received, 8);
});

Deno.test("relay() closes both sides when the signal aborts", async () => {
  const controller = new AbortController();
  await using h = await startRelay({ signal: controller.signal });
  await writeAll(h.client, text("hello"));
  const buffer = new Uint8Array(5);
  let got = 0;
  while (got < 5) got += (await h.server.read(buffer.subarray(got)))!;
  controller.abort();
  const result = await h.result;
  assert.deepEqual(result, { clientToServer: 5, serverToClient: 0, end: "aborted" });
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
  assert.equal(await drain(h.client), 0);
  assert.equal(await drain(h.server), 0);
});

Deno.test("relay() with an already aborted signal ends at once", async () => {
  await using h = await startRelay({ signal: AbortSignal.abort() });
  const result = await h.result;
  assert.equal(result.end, "aborted");
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
});

/** Writes 64 KiB chunks until a write fails (the relay closed); bounded to 256 MiB. */
async function writeUntilError(conn: Deno.Conn): Promise<void> {
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (let i = 0; i < 4096; i++) await conn.write(chunk);
  } catch {
    return;
  }
  assert.fail("the relay never closed the connection");
}

// Deno shuts down the write side before closing, so a peer closing with unread data sends FIN
// then RST: the relay reads end of stream, then its next write in that direction fails.
Deno.test("relay() ends with closed sockets when the server resets mid-upload", async () => {
  await using h = await startRelay();
  const uploading = writeUntilError(h.client);
  const one = new Uint8Array(1);
  assert.equal(await h.server.read(one), 1);
  h.server.close(); // unread data: RST
  const result = await h.result;
  assert.equal(result.end, "error");
  assert.ok(result.error !== undefined);
  assert.ok(result.clientToServer > 0);
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
  await uploading;
  await drain(h.client);
});

Deno.test("relay() ends with closed sockets when the client resets mid-download", async () => {
  await using h = await startRelay();
  const downloading = writeUntilError(h.server);
  const one = new Uint8Array(1);
  assert.equal(await h.client.read(one), 1);
  h.client.close(); // unread data: RST
  const result = await h.result;
  assert.equal(result.end, "error");
  assert.ok(result.serverToClient > 0);
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
  await downloading;
  await drain(h.server);
});

Deno.test("relay() passes a server reset on as end of stream and ends when the client closes", async () => {
  await using h = await startRelay();
  await writeAll(h.client, randomBytes(1000));
  const one = new Uint8Array(1);
  assert.equal(await h.server.read(one), 1);
  h.server.close(); // unread data: RST
  assert.equal(await drain(h.client), 0);
  h.client.close();
  const result = await h.result;
  assert.ok(result.end === "closed" || result.end === "error", `end: ${result.end}`);
  assert.equal(result.clientToServer, 1000);
  assertClosed(h.relayClient);
  assertClosed(h.relayServer);
});

/** An in-memory RelayConn that accepts at most `maxWrite` bytes per write. */
class FakeConn implements RelayConn {
  readonly written: number[] = [];
  readonly #incoming: Uint8Array[];
  readonly #maxWrite: number;
  readonly #failRead: Error | undefined;
  closedWrite = false;
  closed = 0;
  constructor(incoming: Uint8Array[], maxWrite = Infinity, failRead?: Error) {
    this.#incoming = incoming.map((c) => c.slice());
    this.#maxWrite = maxWrite;
    this.#failRead = failRead;
  }
  read(buffer: Uint8Array): Promise<number | null> {
    const chunk = this.#incoming.shift();
    if (chunk === undefined) {
      return this.#failRead ? Promise.reject(this.#failRead) : Promise.resolve(null);
    }
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#incoming.unshift(chunk.subarray(n));
    return Promise.resolve(n);
  }
  write(bytes: Uint8Array): Promise<number> {
    const n = Math.min(bytes.length, this.#maxWrite);
    this.written.push(...bytes.subarray(0, n));
    return Promise.resolve(n);
  }
  closeWrite(): Promise<void> {
    this.closedWrite = true;
    return Promise.resolve();
  }
  close(): void {
    this.closed++;
  }
}

Deno.test("relay() completes partial writes and grows and shrinks its buffer correctly", async () => {
  // Large chunks (buffer upgrade), then small ones (buffer downgrade), all written 7 at a time.
  const chunks = [
    randomBytes(4096),
    randomBytes(300_000),
    randomBytes(262_144),
    randomBytes(10),
    randomBytes(5000),
  ];
  const expected = chunks.flatMap((c) => [...c]);
  const client = new FakeConn(chunks);
  const server = new FakeConn([], 7919);
  const result = await relay(client, server, { clientPrelude: Uint8Array.of(1, 2, 3) });
  assert.deepEqual(server.written, [1, 2, 3, ...expected]);
  assert.deepEqual(result, {
    clientToServer: 3 + expected.length,
    serverToClient: 0,
    end: "closed",
  });
  // The server's end of stream came first and was passed on as a half-close; the client's came
  // second, so both were closed at once, without a shutdown for nothing.
  assert.equal(client.closedWrite, true);
  assert.equal(server.closedWrite, false);
  assert.equal(client.closed, 1);
  assert.equal(server.closed, 1);
});

Deno.test("relay() reports the first read error and closes both sides once", async () => {
  const failure = new Error("boom");
  const client = new FakeConn([Uint8Array.of(1, 2)], Infinity, failure);
  const server = new FakeConn([]);
  const result = await relay(client, server);
  assert.equal(result.end, "error");
  assert.equal(result.error, failure);
  assert.equal(result.clientToServer, 2);
  assert.deepEqual(server.written, [1, 2]);
  assert.equal(client.closed, 1);
  assert.equal(server.closed, 1);
});

Deno.test("relay() holds no large buffer while a connection idles after a burst", async () => {
  await using h = await startRelay();
  try {
    const burst = randomBytes(4 * 1024 * 1024);
    // A bulk download moves the direction to a large buffer ...
    const received = readExactly(h.client, burst.length);
    await writeAll(h.server, burst);
    assert.equal(await sha256(await received), await sha256(burst));
    // ... and once the sender pauses, the relay waits on its small buffer again.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(relayBufferStats().inUse, 0);
    // The connection is still relayed both ways afterwards.
    await writeAll(h.client, Uint8Array.of(1, 2, 3));
    assert.deepEqual(await readExactly(h.server, 3), Uint8Array.of(1, 2, 3));
  } finally {
    h.client.close();
    h.server.close();
  }
});

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(out.subarray(got));
    if (n === null) throw new Error(`stream ended after ${got} of ${length} bytes`);
    got += n;
  }
  return out;
}

Deno.test("relay() reports the sides that had finished when aborted; transferComplete() reads it", async () => {
  const controller = new AbortController();
  await using h = await startRelay({ signal: controller.signal });
  // A download: the server sends everything and its end; the client keeps its socket open.
  await writeAll(h.server, text("payload"));
  await h.server.closeWrite();
  assert.equal(await drain(h.client), 7);
  controller.abort();
  const result = await h.result;
  assert.deepEqual(result, {
    clientToServer: 0,
    serverToClient: 7,
    end: "aborted",
    finished: ["server"],
  });
  assert.equal(transferComplete(result), true);
  // Cut off before either end: not complete; bytes without their sender's end: not complete.
  assert.equal(transferComplete({ clientToServer: 5, serverToClient: 0, end: "aborted" }), false);
  assert.equal(
    transferComplete({ clientToServer: 5, serverToClient: 7, end: "idle", finished: ["server"] }),
    false,
  );
  assert.equal(transferComplete({ clientToServer: 0, serverToClient: 0, end: "closed" }), true);
});
