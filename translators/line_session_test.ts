import assert from "node:assert/strict";
import { LineReader, tcpPair, writeText } from "./testing.ts";
import { latin1Decode, latin1Encode, runLineSession } from "./line_session.ts";
import type { LineVerdict, TranslatorSession } from "./types.ts";

async function harness(session: TranslatorSession, maxLineBytes?: number) {
  const [client, gatewayClient] = await tcpPair();
  const [gatewayServer, server] = await tcpPair();
  const controller = new AbortController();
  const done = runLineSession(session, gatewayClient, gatewayServer, {
    signal: controller.signal,
    ...(maxLineBytes ? { maxLineBytes } : {}),
  });
  const clientLines = new LineReader(client);
  const serverLines = new LineReader(server);
  return {
    client,
    server,
    clientLines,
    serverLines,
    controller,
    done,
    async finish() {
      await clientLines.close();
      await serverLines.close();
      return await done;
    },
  };
}

Deno.test("latin1Decode() and latin1Encode() round-trip every byte", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(latin1Encode(latin1Decode(bytes)), bytes);
  assert.deepEqual(latin1Encode("é€"), new TextEncoder().encode("é€"));
});

Deno.test("runLineSession() forwards untouched bytes and rewrites, swallows, answers locally", async () => {
  const closed: string[] = [];
  const h = await harness({
    async onClientLine(line, io): Promise<LineVerdict> {
      if (line.text === "SECRET") return "consumed";
      if (line.text === "LOCAL") {
        await io.sendToClient("200 answered by the gateway");
        return "consumed";
      }
      if (line.text === "OLD") {
        await io.sendToServer("NEW");
        return "consumed";
      }
      return "forward";
    },
    onServerLine: () => "forward",
    close: () => void closed.push("closed"),
  });
  await writeText(h.client, "LF only\nSECRET\r\nLOCAL\r\nOLD\r\nsplit ");
  await writeText(h.client, "line\r\n");
  assert.equal(await h.clientLines.line(), "200 answered by the gateway");
  assert.equal(await h.serverLines.line(), "LF only");
  assert.equal(await h.serverLines.line(), "NEW");
  assert.equal(await h.serverLines.line(), "split line");
  await writeText(h.server, "220 hello\r\n");
  assert.equal(await h.clientLines.line(), "220 hello");
  h.client.closeWrite();
  assert.equal(await h.serverLines.line(), null);
  h.server.closeWrite();
  assert.equal(await h.clientLines.line(), null);
  // Bytes as read from each side, whatever the hooks made of them.
  assert.deepEqual(await h.finish(), { end: "eof", bytesUp: 40, bytesDown: 11 });
  assert.deepEqual(closed, ["closed"]);
});

Deno.test("runLineSession() holds later client lines while a hook awaits", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const h = await harness({
    async onClientLine(line): Promise<LineVerdict> {
      if (line.text === "SLOW") await gate;
      return "forward";
    },
  });
  await writeText(h.client, "SLOW\r\nNEXT\r\n");
  assert.ok(await h.serverLines.silent(100));
  release();
  assert.equal(await h.serverLines.line(), "SLOW");
  assert.equal(await h.serverLines.line(), "NEXT");
  await h.finish();
});

Deno.test("runLineSession() caps the line length and ends the session", async () => {
  const seen: string[] = [];
  const h = await harness({
    onClientLine: () => "forward",
    async onLineTooLong(side, io) {
      seen.push(side);
      await io.sendToClient("500 too long");
    },
  }, 512);
  await writeText(h.client, "x".repeat(600));
  assert.equal(await h.clientLines.line(), "500 too long");
  assert.equal(await h.clientLines.line(), null);
  const result = await h.finish();
  assert.equal(result.end, "line-too-long");
  assert.deepEqual(seen, ["client"]);
});

Deno.test("runLineSession() ends the session when a hook throws, without rejecting", async () => {
  const h = await harness({
    onClientLine() {
      throw new Error("plugin bug");
    },
  });
  await writeText(h.client, "boom\r\n");
  assert.equal(await h.clientLines.line(), null);
  const result = await h.finish();
  assert.equal(result.end, "error");
  assert.equal((result.error as Error).message, "plugin bug");
});

Deno.test("runLineSession() ends on abort and on io.close()", async () => {
  const h = await harness({});
  h.controller.abort();
  assert.equal((await h.done).end, "aborted");
  await h.finish();
  const h2 = await harness({
    onServerLine(_line, io) {
      io.close();
      return "consumed";
    },
  });
  await writeText(h2.server, "421 bye\r\n");
  assert.equal((await h2.done).end, "closed");
  await h2.finish();
});

Deno.test("runLineSession() relays byte for byte in a direction without a hook", async () => {
  const h = await harness({ onClientLine: () => "forward" });
  const payload = "no line end here \u00ff";
  await writeText(h.server, payload);
  h.server.closeWrite();
  assert.equal(await h.clientLines.all(), payload);
  await h.finish();
});

Deno.test("runLineSession() processes a pending server read first", async () => {
  const [client, gatewayClient] = await tcpPair();
  const [gatewayServer, server] = await tcpPair();
  await writeText(server, "220 sniffed\r\n");
  const buffer = new Uint8Array(64);
  const read = gatewayServer.read(buffer);
  await read;
  const done = runLineSession({ onServerLine: () => "forward" }, gatewayClient, gatewayServer, {
    signal: new AbortController().signal,
    serverPending: { buffer, read },
  });
  const lines = new LineReader(client);
  assert.equal(await lines.line(), "220 sniffed");
  await lines.close();
  server.close();
  await done;
});

Deno.test("runLineSession() hands a last line cut short by EOF to the hook, never past it", async () => {
  const seen: { text: string; raw: string }[] = [];
  const h = await harness({
    onClientLine(line): LineVerdict {
      seen.push({ text: line.text, raw: latin1Decode(line.raw) });
      return line.text.startsWith("PORT") ? "consumed" : "forward";
    },
  });
  await writeText(h.client, "NOOP\r\nPORT 1,2,3,4,0,21");
  h.client.closeWrite();
  assert.equal(await h.serverLines.all(), "NOOP\r\n");
  assert.deepEqual(seen, [
    { text: "NOOP", raw: "NOOP\r\n" },
    { text: "PORT 1,2,3,4,0,21", raw: "PORT 1,2,3,4,0,21" },
  ]);
  // Forwarded, such a line keeps its bytes as they were (no terminator added).
  const h2 = await harness({ onClientLine: () => "forward" });
  await writeText(h2.client, "QUIT");
  h2.client.closeWrite();
  assert.equal(await h2.serverLines.all(), "QUIT");
  h.server.close();
  h2.server.close();
  await h.finish();
  await h2.finish();
});

Deno.test("runLineSession() ends a session idle for idleMs, not while its data channels are busy", async () => {
  const [client, gatewayClient] = await tcpPair();
  const [gatewayServer, server] = await tcpPair();
  // Busy for two idle periods, then not: had busy been ignored, the first idle period would
  // have ended the session and busy() would never have been asked again.
  let asked = 0;
  const done = runLineSession({ onClientLine: () => "forward" }, gatewayClient, gatewayServer, {
    signal: new AbortController().signal,
    idleMs: 20,
    busy: () => ++asked < 3,
  });
  const result = await done;
  assert.equal(result.end, "idle");
  assert.equal(asked, 3, "a busy session outlives idle periods");
  const clientLines = new LineReader(client);
  const serverLines = new LineReader(server);
  assert.equal(await clientLines.line(), null, "the client connection is closed");
  assert.equal(await serverLines.line(), null, "the server connection is closed");
  await clientLines.close();
  await serverLines.close();
});
