import assert from "node:assert/strict";
import { readBindSecondReply, SocksAuthenticationError, socksHandshake } from "./client.ts";
import { SocksReplyError } from "./errors.ts";
import type { HandshakeConn } from "./client.ts";

/** A scripted server: `incoming` is what it sends, `written` collects what the client wrote. */
function scripted(
  incoming: number[],
  chunk = 64,
): HandshakeConn & { written: number[]; unread: () => number } {
  let offset = 0;
  const written: number[] = [];
  return {
    written,
    unread: () => incoming.length - offset,
    read(buffer) {
      if (offset >= incoming.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, chunk, incoming.length - offset);
      buffer.set(incoming.slice(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
    write(data) {
      written.push(...data);
      return Promise.resolve(data.length);
    },
  };
}

const nameTarget = { address: { family: "name" as const, name: "v6.dualgate.example" }, port: 80 };

Deno.test("socksHandshake() sends a name request and reads no byte past the reply", async () => {
  const reply = [5, 0, 0, 4, ...new Array(15).fill(0), 1, 0x1f, 0x90];
  const conn = scripted([5, 0, ...reply, 0x53, 0x53, 0x48]); // server data follows the reply
  const { bound, leftover } = await socksHandshake(conn, { command: 1, target: nameTarget });
  assert.equal(bound.port, 8080);
  assert.equal(bound.address.family, 6);
  assert.equal(leftover.length, 0);
  assert.equal(conn.unread(), 3);
  const name = new TextEncoder().encode("v6.dualgate.example");
  assert.deepEqual(conn.written, [5, 1, 0, 5, 1, 0, 3, name.length, ...name, 0, 80]);
});

Deno.test("socksHandshake() reads a reply split byte by byte", async () => {
  const conn = scripted([5, 0, 5, 0, 0, 3, 3, 0x61, 0x62, 0x63, 0, 1, 9], 1);
  const { bound } = await socksHandshake(conn, { command: 1, target: nameTarget });
  assert.deepEqual(bound.address, { family: "name", name: "abc" });
  assert.equal(conn.unread(), 1);
});

Deno.test("socksHandshake() runs RFC 1929 when the server picks it", async () => {
  const conn = scripted([5, 2, 1, 0, 5, 0, 0, 1, 192, 0, 2, 1, 0, 80]);
  await socksHandshake(conn, { command: 1, target: nameTarget }, {
    credentials: { username: "al", password: "pw" },
  });
  assert.deepEqual(conn.written.slice(0, 4), [5, 2, 0, 2]);
  assert.deepEqual(conn.written.slice(4, 11), [1, 2, 0x61, 0x6c, 2, 0x70, 0x77]);
});

Deno.test("socksHandshake() turns refused credentials and no method into typed errors", async () => {
  await assert.rejects(
    socksHandshake(scripted([5, 2, 1, 1]), { command: 1, target: nameTarget }, {
      credentials: { username: "al", password: "bad" },
    }),
    SocksAuthenticationError,
  );
  await assert.rejects(
    socksHandshake(scripted([5, 0xff]), { command: 1, target: nameTarget }),
    /requires authentication/,
  );
});

Deno.test("socksHandshake() throws SocksReplyError with every REP code", async () => {
  for (let rep = 1; rep <= 8; rep++) {
    const conn = scripted([5, 0, 5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
    await assert.rejects(
      socksHandshake(conn, { command: 1, target: nameTarget }),
      (error: unknown) => error instanceof SocksReplyError && error.reply === rep,
    );
  }
});

Deno.test("socksHandshake() rejects with the signal's reason when aborted", async () => {
  const never: HandshakeConn = {
    read: () => new Promise(() => {}),
    write: (data) => Promise.resolve(data.length),
  };
  const controller = new AbortController();
  const pending = socksHandshake(never, { command: 1, target: nameTarget }, {
    signal: controller.signal,
  });
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
});

Deno.test("readBindSecondReply() reads the peer after the first BIND reply", async () => {
  const conn = scripted([
    5,
    0,
    5,
    0,
    0,
    1,
    127,
    0,
    0,
    1,
    4,
    0,
    5,
    0,
    0,
    1,
    198,
    51,
    100,
    2,
    0,
    20,
    7,
  ]);
  const first = await socksHandshake(conn, { command: 2, target: nameTarget });
  assert.equal(first.bound.port, 1024);
  const second = await readBindSecondReply(conn);
  assert.equal(second.bound.port, 20);
  assert.equal(conn.unread(), 1);
});
