/**
 * Handing a session back to the core relay (`"passthrough"`, `io.detach()`): every byte after
 * the switch arrives, in order, whether it was already read by the line loop (after the line,
 * a partial line, a read in flight) or not; no hook sees a line after it.
 */

import assert from "node:assert/strict";
import { endpointFromNetAddr } from "../net/address.ts";
import { randomBytes, readAll, sha256, writeAll } from "../tests/helpers/streams.ts";
import { ExpectationRegistry } from "./expectations.ts";
import { runTranslation } from "./run.ts";
import { LineReader, standInRelay, tcpPair, writeText } from "./testing.ts";
import type {
  ConfiguredTranslator,
  LineVerdict,
  TranslatorContext,
  TranslatorSession,
} from "./types.ts";

async function connections() {
  const [client, gatewayClient] = await tcpPair("127.0.0.1");
  const [gatewayServer, server] = await tcpPair("::1");
  const ctx: TranslatorContext = {
    id: "h",
    client: endpointFromNetAddr(gatewayClient.remoteAddr),
    clientSideLocal: endpointFromNetAddr(gatewayClient.localAddr),
    server: endpointFromNetAddr(gatewayServer.remoteAddr),
    serverSideLocal: endpointFromNetAddr(gatewayServer.localAddr),
    target: { address: { family: "name", name: "x.example" }, port: 25 },
    user: null,
  };
  return { client, gatewayClient, gatewayServer, server, ctx };
}

function translatorOf(session: () => TranslatorSession): ConfiguredTranslator {
  return {
    ports: new Set([25]),
    maxLineBytes: 512,
    translator: { type: "starttls", match: () => "claim", startSession: session },
  };
}

function run(c: Awaited<ReturnType<typeof connections>>, translator: ConfiguredTranslator) {
  return runTranslation([translator], c.ctx, c.gatewayClient, c.gatewayServer, {
    deps: {
      dial: () => Promise.reject(new Error("no dial in this test")),
      check: () => null,
      refused: () => {},
      relay: standInRelay,
      expectations: new ExpectationRegistry(),
    },
    relay: standInRelay,
    idleMs: 60_000,
    signal: AbortSignal.any([]),
  });
}

/** Binary data full of line ends, longer than any line cap: it must never meet the loop. */
function opaque(length: number): Uint8Array<ArrayBuffer> {
  const bytes = randomBytes(length);
  for (let i = 0; i < length; i += 97) bytes[i] = 0x0a;
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) (all.set(part, offset), offset += part.length);
  return all;
}

Deno.test("a passthrough verdict hands back: bytes after the line in the same read arrive intact", async () => {
  const c = await connections();
  const seen: string[] = [];
  let closed = 0;
  const done = run(
    c,
    translatorOf(() => ({
      onClientLine: (
        line,
      ) => (seen.push(line.text), line.text === "STARTTLS" ? "passthrough" : "forward"),
      close: () => void closed++,
    })),
  );
  const up = opaque(2 * 1024 * 1024 + 3);
  const down = opaque(1024 * 1024 + 5);
  // One write: the switch line and the opaque bytes after it reach the loop in one read.
  const sent = concat(new TextEncoder().encode("EHLO x\r\nSTARTTLS\r\n"), up);
  const [received] = await Promise.all([
    readAll(c.server),
    writeAll(c.client, sent).then(() => c.client.closeWrite()),
    writeAll(c.server, down).then(() => c.server.closeWrite()),
  ]);
  const back = await readAll(c.client);
  assert.equal(await sha256(received), await sha256(sent));
  assert.equal(await sha256(back), await sha256(down));
  const result = await done;
  assert.deepEqual(seen, ["EHLO x", "STARTTLS"], "no hook sees a line after the switch");
  assert.equal(closed, 1, "close() runs once, at the hand-back");
  assert.equal(result?.handedBack, true);
  assert.equal(result?.translator, "starttls");
  assert.equal(result?.bytesUp, sent.length);
  assert.equal(result?.bytesDown, down.length);
  c.client.close();
  c.server.close();
});

async function readExactly(conn: Deno.Conn, length: number): Promise<string> {
  const bytes = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const n = await conn.read(bytes.subarray(offset));
    if (n === null) throw new Error("Cannot read: early end of stream");
    offset += n;
  }
  return new TextDecoder().decode(bytes);
}

Deno.test("io.detach() from the server's hook keeps the client's partial line and its read in flight", async () => {
  const c = await connections();
  const clientLines: string[] = [];
  let signalled = false;
  const done = run(
    c,
    translatorOf(() => ({
      onClientLine: (line) => (clientLines.push(line.text), "forward"),
      onServerLine: (line, io) => {
        if (line.text === "220 go ahead") {
          io.signal.addEventListener("abort", () => signalled = true);
          io.detach();
        }
        return "forward";
      },
    })),
  );
  // A whole line the hook sees, then a partial one the loop holds when the switch comes.
  await writeText(c.client, "HELLO\r\npartial-");
  assert.equal(await readExactly(c.server, 7), "HELLO\r\n");
  await writeText(c.server, "220 go ahead\r\n");
  assert.equal(await readExactly(c.client, 14), "220 go ahead\r\n");
  // The client's read is in flight in the loop when the switch comes: its bytes go through.
  const up = concat(new TextEncoder().encode("line\r\n"), opaque(1024 * 1024 + 11));
  const down = opaque(512 * 1024 + 7);
  const [received, back] = await Promise.all([
    readAll(c.server),
    readAll(c.client),
    writeAll(c.client, up).then(() => c.client.closeWrite()),
    writeAll(c.server, down).then(() => c.server.closeWrite()),
  ]);
  const expected = concat(new TextEncoder().encode("partial-"), up);
  assert.equal(await sha256(received), await sha256(expected));
  assert.equal(await sha256(back), await sha256(down));
  const result = await done;
  assert.deepEqual(clientLines, ["HELLO"], "the partial line never reaches a hook");
  assert.ok(signalled, "io.signal aborts at the hand-back");
  assert.equal(result?.handedBack, true);
  assert.equal(result?.bytesUp, 7 + expected.length);
  assert.equal(result?.bytesDown, 14 + down.length);
  c.client.close();
  c.server.close();
});

Deno.test("a translated session is not idle while an expected CONNECT it announced is open", async () => {
  const c = await connections();
  const expectations = new ExpectationRegistry();
  const [dataNear, dataFar] = await tcpPair("::1");
  const announced = { address: { family: "name" as const, name: "x.example" }, port: 2000 };
  const done = runTranslation(
    [{
      ports: new Set([25]),
      maxLineBytes: 512,
      translator: {
        type: "expecting",
        match: () => "claim",
        startSession: (_ctx, broker) => ({
          async onClientLine(line, io): Promise<LineVerdict> {
            broker.expect({
              targets: [announced],
              ttlMs: 60_000,
              open: () => Promise.resolve(dataNear),
              signal: io.signal,
              relaySignal: io.signal,
            });
            await io.sendToClient(`expecting ${line.text}`);
            return "consumed";
          },
        }),
      },
    }],
    c.ctx,
    c.gatewayClient,
    c.gatewayServer,
    {
      deps: {
        dial: () => Promise.reject(new Error("no dial in this test")),
        check: () => null,
        refused: () => {},
        relay: standInRelay,
        expectations,
      },
      relay: standInRelay,
      idleMs: 20,
      signal: AbortSignal.any([]),
    },
  );
  const fromGateway = new LineReader(c.client);
  await writeText(c.client, "data\r\n");
  assert.equal(await fromGateway.line(), "expecting data");
  // What the gateway does with the expected CONNECT: open, relay (here: nothing), ended().
  const expected = expectations.take({ address: c.ctx.client.address, user: null }, announced);
  assert.ok(expected);
  await expected.open(AbortSignal.any([]));
  // Many idle periods with no control traffic: the open data channel keeps the session.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await writeText(c.client, "again\r\n");
  assert.equal(await fromGateway.line(), "expecting again");
  expected.ended();
  const result = await done;
  assert.equal(result?.end, "idle", "once the data channel ended, idleness ends the session");
  assert.equal(await fromGateway.line(), null);
  await fromGateway.close();
  dataNear.close();
  dataFar.close();
  c.server.close();
});
