import assert from "node:assert/strict";
import { formatEndpoint, parseIp } from "../../net/address.ts";
import { TruncatedMessageError } from "../../socks5/errors.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import type { ProxyProtocolMode } from "../config/types.ts";
import {
  encodeProxyV2Header,
  PROXY_V2_SIGNATURE,
  type ProxyHeader,
  ProxyHeaderError,
  readProxyHeader,
} from "./proxy_protocol.ts";

/** A reader over `bytes`, delivered `chunk` bytes at a time (1: every byte its own segment). */
function readerOf(bytes: Uint8Array, chunk = 1 << 16): ExactReader {
  let offset = 0;
  return new ExactReader({
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const n = Math.min(chunk, buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  });
}

const text = (s: string) => new TextEncoder().encode(s);

function v2(command: number, family: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + body.length);
  out.set(PROXY_V2_SIGNATURE);
  out[12] = 0x20 | command;
  out[13] = family;
  out[14] = body.length >> 8;
  out[15] = body.length & 0xff;
  out.set(body, 16);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function endpoints(header: ProxyHeader): [string, string] {
  assert.equal(header.command, "proxy");
  if (header.command !== "proxy") throw new Error("unreachable");
  return [formatEndpoint(header.source), formatEndpoint(header.destination)];
}

const SOCKS_GREETING = new Uint8Array([5, 1, 0]);

async function readAndKeep(bytes: Uint8Array, mode: ProxyProtocolMode = "any", chunk?: number) {
  const reader = readerOf(concat(bytes, SOCKS_GREETING), chunk);
  const header = await readProxyHeader(reader, mode);
  // What follows the header is still there for the SOCKS greeting.
  assert.deepEqual(await reader.readExact(3), SOCKS_GREETING);
  return header;
}

Deno.test("readProxyHeader() reads v1 TCP4 and TCP6, byte by byte too", async () => {
  for (const chunk of [1, 1 << 16]) {
    const v4 = await readAndKeep(
      text("PROXY TCP4 192.0.2.2 192.0.2.1 40000 1090\r\n"),
      "v1",
      chunk,
    );
    assert.equal(v4.version, 1);
    assert.deepEqual(endpoints(v4), ["192.0.2.2:40000", "192.0.2.1:1090"]);
    const v6 = await readAndKeep(
      text("PROXY TCP6 2001:db8:1::2 2001:db8:1::1 40001 1090\r\n"),
      "any",
      chunk,
    );
    assert.deepEqual(endpoints(v6), ["[2001:db8:1::2]:40001", "[2001:db8:1::1]:1090"]);
  }
});

Deno.test("readProxyHeader() unwraps an IPv4-mapped v1 TCP6 source", async () => {
  const header = await readAndKeep(text("PROXY TCP6 ::ffff:192.0.2.2 ::1 1 2\r\n"));
  assert.deepEqual(endpoints(header), ["192.0.2.2:1", "[::1]:2"]);
});

Deno.test("readProxyHeader() unwraps IPv4-mapped v1 and v2 addresses, loopback and 0/8 too", async () => {
  const v1 = await readAndKeep(text("PROXY TCP6 ::ffff:127.0.0.1 ::ffff:0.0.0.0 1 2\r\n"));
  assert.deepEqual(endpoints(v1), ["127.0.0.1:1", "0.0.0.0:2"]);
  const mapped = (a: number[]) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a];
  const body = new Uint8Array([...mapped([10, 1, 2, 3]), ...mapped([0, 1, 2, 3]), 0, 1, 0, 2]);
  const header = await readAndKeep(v2(1, 0x21, body), "v2");
  assert.deepEqual(endpoints(header), ["10.1.2.3:1", "0.1.2.3:2"]);
});

Deno.test("readProxyHeader() treats v1 UNKNOWN as the connection's own endpoints", async () => {
  assert.deepEqual(await readAndKeep(text("PROXY UNKNOWN\r\n")), { command: "local", version: 1 });
  assert.deepEqual(
    await readAndKeep(text("PROXY UNKNOWN ffff:f...f:ffff 1 2 3\r\n")),
    { command: "local", version: 1 },
  );
});

Deno.test("readProxyHeader() rejects malformed v1 lines", async () => {
  for (
    const line of [
      "PROXY TCP4 192.0.2.2 192.0.2.1 40000\r\n",
      "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
      "PROXY TCP4 192.0.2.2 192.0.2.1 1 65536\r\n",
      "PROXY TCP4 192.0.2.2 192.0.2.1 01 2\r\n",
      "PROXY TCP5 192.0.2.2 192.0.2.1 1 2\r\n",
      "PROXY TCP4 192.0.2.2 192.0.2.1 1 2\n",
      "PROXYTCP4 192.0.2.2 192.0.2.1 1 2\r\n",
      "PROXY TCP4 192.0.2.2  192.0.2.1 1 2\r\n",
      `PROXY UNKNOWN ${"x".repeat(120)}\r\n`,
    ]
  ) {
    await assert.rejects(readProxyHeader(readerOf(text(line)), "v1"), ProxyHeaderError, line);
  }
});

Deno.test("readProxyHeader() reads v2 PROXY over IPv4 and IPv6 and skips TLVs", async () => {
  const v4 = await readAndKeep(
    v2(1, 0x11, new Uint8Array([192, 0, 2, 2, 192, 0, 2, 1, 0x9c, 0x40, 0x04, 0x42])),
    "v2",
  );
  assert.equal(v4.version, 2);
  assert.deepEqual(endpoints(v4), ["192.0.2.2:40000", "192.0.2.1:1090"]);

  const body = new Uint8Array(36 + 7 + 700);
  body.set([0x20, 0x01, 0x0d, 0xb8, 0, 1], 0);
  body[15] = 2;
  body.set([0x20, 0x01, 0x0d, 0xb8, 0, 1], 16);
  body[31] = 1;
  body.set([0x9c, 0x41, 0x04, 0x42], 32);
  // A PP2_TYPE_ALPN TLV and a long NOOP TLV: skipped, even past the reader's buffer size.
  body.set([0x01, 0x00, 0x04, 0x68, 0x32, 0x63, 0x00], 36);
  body.set([0x04, 0x02, 0xb9], 43);
  const v6 = await readAndKeep(v2(1, 0x21, body), "any", 100);
  assert.deepEqual(endpoints(v6), ["[2001:db8:1::2]:40001", "[2001:db8:1::1]:1090"]);
});

Deno.test("readProxyHeader() treats v2 LOCAL and non-IP families as the connection's own", async () => {
  assert.deepEqual(await readAndKeep(v2(0, 0x00, new Uint8Array(0)), "v2"), {
    command: "local",
    version: 2,
  });
  // LOCAL with addresses present (haproxy health checks may send them): ignored.
  assert.deepEqual(await readAndKeep(v2(0, 0x11, new Uint8Array(12))), {
    command: "local",
    version: 2,
  });
  assert.deepEqual(await readAndKeep(v2(1, 0x31, new Uint8Array(216))), {
    command: "local",
    version: 2,
  });
});

Deno.test("readProxyHeader() rejects bad v2 headers and the wrong version for the mode", async () => {
  const good = v2(1, 0x11, new Uint8Array(12));
  const badSignature = good.slice();
  badSignature[9] = 0x58;
  await assert.rejects(readProxyHeader(readerOf(badSignature), "v2"), ProxyHeaderError);
  const badVersion = good.slice();
  badVersion[12] = 0x11;
  await assert.rejects(readProxyHeader(readerOf(badVersion), "v2"), ProxyHeaderError);
  const badCommand = good.slice();
  badCommand[12] = 0x22;
  await assert.rejects(readProxyHeader(readerOf(badCommand), "v2"), ProxyHeaderError);
  const short = v2(1, 0x21, new Uint8Array(12));
  await assert.rejects(readProxyHeader(readerOf(short), "v2"), ProxyHeaderError);
  await assert.rejects(readProxyHeader(readerOf(good), "v1"), /v2 sent, v1 expected/);
  await assert.rejects(
    readProxyHeader(readerOf(text("PROXY UNKNOWN\r\n")), "v2"),
    /v1 sent, v2 expected/,
  );
  await assert.rejects(
    readProxyHeader(readerOf(SOCKS_GREETING.slice()), "any"),
    ProxyHeaderError,
  );
  await assert.rejects(
    readProxyHeader(readerOf(new Uint8Array([5, 1, 0, 0, 0])), "any"),
    /does not start with one/,
  );
});

Deno.test("readProxyHeader() reports a truncated header", async () => {
  const good = v2(1, 0x21, new Uint8Array(36));
  for (const cut of [3, 12, 15, 30]) {
    await assert.rejects(
      readProxyHeader(readerOf(good.subarray(0, cut)), "any"),
      TruncatedMessageError,
    );
  }
  await assert.rejects(
    readProxyHeader(readerOf(text("PROXY TCP4 192.0.2.2")), "any"),
    TruncatedMessageError,
  );
});

Deno.test("readProxyHeader() unwraps an IPv4-mapped v2 source, so rules see 127.0.0.1 as IPv4", async () => {
  const body = new Uint8Array(36);
  body.set([0xff, 0xff, 127, 0, 0, 1], 10);
  body.set([0xff, 0xff, 192, 0, 2, 1], 26);
  body.set([0x9c, 0x40, 0x04, 0x38], 32);
  const header = await readAndKeep(v2(1, 0x21, body), "v2");
  assert.deepEqual(endpoints(header), ["127.0.0.1:40000", "192.0.2.1:1080"]);
  assert.equal(header.command === "proxy" && header.source.address.family, 4);
});

Deno.test("encodeProxyV2Header() round-trips through readProxyHeader(), mixed families as IPv6", async () => {
  const ep = (text: string, port: number) => ({ address: parseIp(text)!, port });
  const cases: [ReturnType<typeof ep>, ReturnType<typeof ep>, [string, string]][] = [
    [ep("192.0.2.5", 40000), ep("192.0.2.1", 1080), ["192.0.2.5:40000", "192.0.2.1:1080"]],
    [
      ep("2001:db8:1::2", 40001),
      ep("2001:db8:1::1", 1080),
      ["[2001:db8:1::2]:40001", "[2001:db8:1::1]:1080"],
    ],
    [ep("192.0.2.5", 1), ep("2001:db8:1::1", 65535), ["192.0.2.5:1", "[2001:db8:1::1]:65535"]],
  ];
  for (const [source, destination, expected] of cases) {
    const bytes = encodeProxyV2Header({ source, destination });
    assert.deepEqual(endpoints(await readAndKeep(bytes, "v2", 1)), expected);
  }
  assert.deepEqual(await readAndKeep(encodeProxyV2Header(), "v2"), {
    command: "local",
    version: 2,
  });
});
