import assert from "node:assert/strict";
import {
  decodeUdpDatagram,
  encodeGreeting,
  encodeMethodSelection,
  encodePasswordAuthReply,
  encodePasswordAuthRequest,
  encodeReply,
  encodeRequest,
  encodeUdpDatagram,
  readGreeting,
  readMethodSelection,
  readPasswordAuthReply,
  readPasswordAuthRequest,
  readReply,
  readRequest,
  targetLength,
  writeTarget,
  ZERO_TARGET,
} from "./codec.ts";
import { SocksProtocolError, TruncatedMessageError } from "./errors.ts";
import { ExactReader } from "./exact_reader.ts";
import {
  AddressType,
  AuthMethod,
  type ByteSource,
  Command,
  Reply,
  type SocksTarget,
} from "./types.ts";

/** Yields the given chunks in order (each cut to the reader's buffer), then end of stream. */
class ChunkSource implements ByteSource {
  readonly #chunks: Uint8Array[];
  constructor(...chunks: Uint8Array[]) {
    this.#chunks = chunks.map((c) => c.slice());
  }
  read(buffer: Uint8Array): Promise<number | null> {
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return Promise.resolve(null);
    const n = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, n));
    if (n < chunk.length) this.#chunks.unshift(chunk.subarray(n));
    return Promise.resolve(n);
  }
}

function oneChunk(bytes: Uint8Array): ExactReader {
  return new ExactReader(new ChunkSource(bytes));
}

function byteByByte(bytes: Uint8Array): ExactReader {
  return new ExactReader(new ChunkSource(...[...bytes].map((b) => Uint8Array.of(b))));
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

/**
 * Decodes `bytes` from one chunk, one byte per read, and split in two at every point; all
 * must agree and consume the whole message. Returns the one-chunk result.
 */
async function decodeEveryWay<T>(
  bytes: Uint8Array,
  read: (reader: ExactReader) => Promise<T>,
): Promise<T> {
  const reader = oneChunk(bytes);
  const expected = await read(reader);
  assert.equal(reader.buffered, 0);
  const slow = byteByByte(bytes);
  assert.deepEqual(await read(slow), expected);
  assert.equal(slow.buffered, 0);
  for (let cut = 1; cut < bytes.length; cut++) {
    const split = new ExactReader(new ChunkSource(bytes.subarray(0, cut), bytes.subarray(cut)));
    assert.deepEqual(await read(split), expected, `split at ${cut}`);
  }
  return expected;
}

/** Every proper prefix of `bytes` must fail with TruncatedMessageError. */
async function assertTruncatedEveryWay(
  bytes: Uint8Array,
  read: (reader: ExactReader) => Promise<unknown>,
): Promise<void> {
  for (let length = 0; length < bytes.length; length++) {
    const prefix = bytes.subarray(0, length);
    await assert.rejects(read(oneChunk(prefix)), TruncatedMessageError, `prefix ${length}`);
    await assert.rejects(read(byteByByte(prefix)), TruncatedMessageError, `prefix ${length}`);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("expected a rejection"), (e: unknown) => e);
}

const V4_TARGET: SocksTarget = {
  address: { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) },
  port: 443,
};
const V6_BYTES = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd);
const V6_TARGET: SocksTarget = { address: { family: 6, bytes: V6_BYTES }, port: 65535 };
const NAME_TARGET: SocksTarget = { address: { family: "name", name: "example.com" }, port: 80 };
const MAX_NAME = "a".repeat(63) + "." + "b".repeat(63) + "." + "c".repeat(63) + "." +
  "d".repeat(61); // 255 bytes
const MAX_NAME_TARGET: SocksTarget = { address: { family: "name", name: MAX_NAME }, port: 0 };
const TARGETS = [V4_TARGET, V6_TARGET, NAME_TARGET, MAX_NAME_TARGET];

// Greeting.

Deno.test("encodeGreeting() produces VER NMETHODS METHODS", () => {
  assert.deepEqual(encodeGreeting({ methods: [0, 2] }), Uint8Array.of(5, 2, 0, 2));
  assert.deepEqual(encodeGreeting({ methods: [0xff] }), Uint8Array.of(5, 1, 0xff));
});

Deno.test("readGreeting() decodes the greeting however it is split", async () => {
  for (const methods of [[0], [0, 1, 2], Array.from({ length: 255 }, (_, i) => i)]) {
    const greeting = await decodeEveryWay(encodeGreeting({ methods }), readGreeting);
    assert.deepEqual(greeting, { methods });
  }
});

Deno.test("encodeGreeting() rejects no methods and more than 255", () => {
  assert.throws(() => encodeGreeting({ methods: [] }), RangeError);
  assert.throws(() => encodeGreeting({ methods: new Array<number>(256).fill(0) }), RangeError);
  assert.equal(encodeGreeting({ methods: new Array<number>(255).fill(0) }).length, 257);
});

Deno.test("readGreeting() rejects a version other than 5", async () => {
  for (const version of [4, 0, 1, 6, 0xff]) {
    const error = await rejection(readGreeting(oneChunk(Uint8Array.of(version, 1, 0))));
    assert.ok(error instanceof SocksProtocolError);
    assert.ok(!(error instanceof TruncatedMessageError));
    assert.equal(error.reply, undefined);
  }
});

Deno.test("readGreeting() rejects NMETHODS 0", async () => {
  const error = await rejection(readGreeting(oneChunk(Uint8Array.of(5, 0, 0, 2))));
  assert.ok(error instanceof SocksProtocolError);
  assert.ok(!(error instanceof TruncatedMessageError));
});

Deno.test("readGreeting() throws TruncatedMessageError for every truncation", async () => {
  await assertTruncatedEveryWay(Uint8Array.of(5, 3, 0, 1, 2), readGreeting);
});

// Method selection.

Deno.test("encodeMethodSelection() and readMethodSelection() round-trip", async () => {
  for (const method of Object.values(AuthMethod)) {
    const bytes = encodeMethodSelection(method);
    assert.deepEqual(bytes, Uint8Array.of(5, method));
    assert.equal(await decodeEveryWay(bytes, readMethodSelection), method);
  }
});

Deno.test("readMethodSelection() rejects a version other than 5 and truncation", async () => {
  await assert.rejects(readMethodSelection(oneChunk(Uint8Array.of(4, 0))), SocksProtocolError);
  await assertTruncatedEveryWay(Uint8Array.of(5, 0), readMethodSelection);
});

// RFC 1929.

Deno.test("encodePasswordAuthRequest() produces VER(1) ULEN UNAME PLEN PASSWD", () => {
  assert.deepEqual(
    encodePasswordAuthRequest({ username: "ab", password: "xyz" }),
    Uint8Array.of(1, 2, 0x61, 0x62, 3, 0x78, 0x79, 0x7a),
  );
});

Deno.test("readPasswordAuthRequest() decodes requests however they are split", async () => {
  for (
    const request of [
      { username: "u", password: "p" },
      { username: "alice", password: "correct horse battery staple" },
      { username: "jürgen", password: "пароль🔑" },
      { username: "u".repeat(255), password: "p".repeat(255) },
      { username: "a:b@c", password: " \t\u0001" },
    ]
  ) {
    const bytes = encodePasswordAuthRequest(request);
    assert.deepEqual(await decodeEveryWay(bytes, readPasswordAuthRequest), request);
  }
});

Deno.test("encodePasswordAuthRequest() rejects empty and over-long fields (in bytes)", () => {
  const bad = [
    { username: "", password: "p" },
    { username: "u", password: "" },
    { username: "u".repeat(256), password: "p" },
    { username: "u", password: "p".repeat(256) },
    // 128 two-byte characters are 256 bytes.
    { username: "é".repeat(128), password: "p" },
  ];
  for (const request of bad) assert.throws(() => encodePasswordAuthRequest(request), RangeError);
  assert.equal(encodePasswordAuthRequest({ username: "é".repeat(127), password: "p" })[1], 254);
});

Deno.test("readPasswordAuthRequest() requires sub-negotiation version 1, not 5", async () => {
  for (const version of [5, 0, 2]) {
    const bytes = Uint8Array.of(version, 1, 0x61, 1, 0x62);
    const error = await rejection(readPasswordAuthRequest(oneChunk(bytes)));
    assert.ok(error instanceof SocksProtocolError);
    assert.ok(!(error instanceof TruncatedMessageError));
  }
});

Deno.test("readPasswordAuthRequest() rejects ULEN 0 and PLEN 0", async () => {
  const ulen0 = await rejection(readPasswordAuthRequest(oneChunk(Uint8Array.of(1, 0, 1, 0x62))));
  assert.ok(ulen0 instanceof SocksProtocolError && !(ulen0 instanceof TruncatedMessageError));
  const plen0 = await rejection(readPasswordAuthRequest(oneChunk(Uint8Array.of(1, 1, 0x61, 0))));
  assert.ok(plen0 instanceof SocksProtocolError && !(plen0 instanceof TruncatedMessageError));
});

Deno.test("readPasswordAuthRequest() throws TruncatedMessageError for every truncation", async () => {
  const bytes = encodePasswordAuthRequest({ username: "user", password: "secret" });
  await assertTruncatedEveryWay(bytes, readPasswordAuthRequest);
});

Deno.test("encodePasswordAuthReply() and readPasswordAuthReply() round-trip", async () => {
  for (const status of [0, 1, 0xff]) {
    const bytes = encodePasswordAuthReply(status);
    assert.deepEqual(bytes, Uint8Array.of(1, status));
    assert.equal(await decodeEveryWay(bytes, readPasswordAuthReply), status);
  }
});

Deno.test("readPasswordAuthReply() rejects version 5 and truncation", async () => {
  await assert.rejects(readPasswordAuthReply(oneChunk(Uint8Array.of(5, 0))), SocksProtocolError);
  await assertTruncatedEveryWay(Uint8Array.of(1, 0), readPasswordAuthReply);
});

// Request and reply.

Deno.test("encodeRequest() lays out VER CMD RSV ATYP DST.ADDR DST.PORT", () => {
  assert.deepEqual(
    encodeRequest({ command: Command.Connect, target: V4_TARGET }),
    Uint8Array.of(5, 1, 0, AddressType.Ipv4, 192, 0, 2, 1, 0x01, 0xbb),
  );
  assert.deepEqual(
    encodeRequest({ command: Command.UdpAssociate, target: NAME_TARGET }),
    Uint8Array.of(
      5,
      3,
      0,
      AddressType.DomainName,
      11,
      ...new TextEncoder().encode("example.com"),
      0,
      80,
    ),
  );
  const v6 = encodeRequest({ command: Command.Bind, target: V6_TARGET });
  assert.equal(v6.length, 3 + 1 + 16 + 2);
  assert.deepEqual([...v6.subarray(0, 4)], [5, 2, 0, AddressType.Ipv6]);
  assert.deepEqual(v6.subarray(4, 20), V6_BYTES);
  assert.deepEqual([...v6.subarray(20)], [0xff, 0xff]);
});

Deno.test("readRequest() decodes every address type however it is split", async () => {
  for (const target of TARGETS) {
    for (const command of [Command.Connect, Command.Bind, Command.UdpAssociate]) {
      const request = { command, target };
      assert.deepEqual(await decodeEveryWay(encodeRequest(request), readRequest), request);
    }
  }
});

Deno.test("readRequest() returns an unknown command as sent", async () => {
  for (const command of [0, 4, 9, 0x80, 0xff]) {
    const request = await readRequest(oneChunk(encodeRequest({ command, target: V4_TARGET })));
    assert.equal(request.command, command);
    assert.deepEqual(request.target, V4_TARGET);
  }
});

Deno.test("readRequest() ignores a non-zero RSV", async () => {
  const bytes = encodeRequest({ command: Command.Connect, target: NAME_TARGET });
  bytes[2] = 0xff;
  assert.deepEqual(await readRequest(oneChunk(bytes)), {
    command: Command.Connect,
    target: NAME_TARGET,
  });
});

Deno.test("readRequest() rejects a version other than 5 with REP 1", async () => {
  for (const version of [4, 1, 0]) {
    const bytes = encodeRequest({ command: Command.Connect, target: V4_TARGET });
    bytes[0] = version;
    const error = await rejection(readRequest(oneChunk(bytes)));
    assert.ok(error instanceof SocksProtocolError && !(error instanceof TruncatedMessageError));
    assert.equal(error.reply, Reply.GeneralFailure);
  }
});

Deno.test("readRequest() rejects an unknown ATYP with REP 8", async () => {
  for (const atyp of [0, 2, 5, 6, 0xff]) {
    const bytes = Uint8Array.of(5, 1, 0, atyp, 1, 2, 3, 4, 0, 80);
    const error = await rejection(readRequest(oneChunk(bytes)));
    assert.ok(error instanceof SocksProtocolError, `atyp ${atyp}`);
    assert.ok(!(error instanceof TruncatedMessageError), `atyp ${atyp}`);
    assert.equal(error.reply, Reply.AddressTypeNotSupported, `atyp ${atyp}`);
  }
  // Even with nothing after ATYP, the type is judged before more bytes are needed.
  const short = await rejection(readRequest(oneChunk(Uint8Array.of(5, 1, 0, 2))));
  assert.ok(short instanceof SocksProtocolError);
  assert.equal(short.reply, Reply.AddressTypeNotSupported);
});

Deno.test("readRequest() rejects an empty domain name", async () => {
  const error = await rejection(readRequest(oneChunk(Uint8Array.of(5, 1, 0, 3, 0, 0, 80))));
  assert.ok(error instanceof SocksProtocolError && !(error instanceof TruncatedMessageError));
  assert.equal(error.reply, Reply.GeneralFailure);
});

Deno.test("readRequest() rejects a NUL anywhere in a domain name", async () => {
  for (const name of [[0], [0x61, 0], [0, 0x61], [0x61, 0, 0x62]]) {
    const bytes = Uint8Array.of(5, 1, 0, 3, name.length, ...name, 0, 80);
    const error = await rejection(readRequest(oneChunk(bytes)));
    assert.ok(error instanceof SocksProtocolError && !(error instanceof TruncatedMessageError));
    assert.equal(error.reply, Reply.GeneralFailure);
  }
});

Deno.test("readRequest() decodes a 255-byte UTF-8 name", async () => {
  const name = "é".repeat(127) + "x"; // 255 bytes
  const target: SocksTarget = { address: { family: "name", name }, port: 8080 };
  const bytes = encodeRequest({ command: Command.Connect, target });
  assert.equal(bytes[4], 255);
  assert.deepEqual(await decodeEveryWay(bytes, readRequest), { command: 1, target });
});

Deno.test("readRequest() throws TruncatedMessageError for every truncation", async () => {
  for (const target of [V4_TARGET, V6_TARGET, NAME_TARGET]) {
    await assertTruncatedEveryWay(encodeRequest({ command: 1, target }), readRequest);
  }
});

Deno.test("encodeRequest() rejects names of 0 or more than 255 bytes", () => {
  const encode = (name: string) =>
    encodeRequest({ command: 1, target: { address: { family: "name", name }, port: 1 } });
  assert.throws(() => encode(""), RangeError);
  assert.throws(() => encode("a".repeat(256)), RangeError);
  assert.throws(() => encode("é".repeat(128)), RangeError);
  assert.equal(encode("a".repeat(255)).length, 3 + 1 + 1 + 255 + 2);
});

Deno.test("encodeRequest() rejects ports outside 0..65535", () => {
  for (const port of [-1, 65536, 1.5, NaN]) {
    assert.throws(
      () => encodeRequest({ command: 1, target: { address: V4_TARGET.address, port } }),
      RangeError,
      String(port),
    );
  }
});

Deno.test("encodeReply() and readReply() round-trip every address type and code", async () => {
  for (const target of TARGETS) {
    for (const reply of Object.values(Reply)) {
      const message = { reply, bound: target };
      assert.deepEqual(await decodeEveryWay(encodeReply(message), readReply), message);
    }
  }
});

Deno.test("encodeReply() with ZERO_TARGET is the 10-byte failure reply", () => {
  assert.deepEqual(
    encodeReply({ reply: Reply.ConnectionRefused, bound: ZERO_TARGET }),
    Uint8Array.of(5, 5, 0, 1, 0, 0, 0, 0, 0, 0),
  );
});

Deno.test("readReply() rejects version 4, unknown ATYP and truncation", async () => {
  await assert.rejects(
    readReply(oneChunk(Uint8Array.of(4, 0, 0, 1, 0, 0, 0, 0, 0, 0))),
    SocksProtocolError,
  );
  const error = await rejection(readReply(oneChunk(Uint8Array.of(5, 0, 0, 9, 0, 0))));
  assert.ok(error instanceof SocksProtocolError);
  assert.equal(error.reply, Reply.AddressTypeNotSupported);
  await assertTruncatedEveryWay(encodeReply({ reply: 0, bound: V6_TARGET }), readReply);
});

Deno.test("targetLength() counts ATYP, address and port", () => {
  assert.equal(targetLength(V4_TARGET), 7);
  assert.equal(targetLength(V6_TARGET), 19);
  assert.equal(targetLength(NAME_TARGET), 1 + 1 + 11 + 2);
  assert.equal(targetLength({ address: { family: "name", name: "ü" }, port: 1 }), 1 + 1 + 2 + 2);
});

Deno.test("writeTarget() writes at an offset and returns the offset after it", () => {
  const out = new Uint8Array(20).fill(0xee);
  const end = writeTarget(out, 3, V4_TARGET);
  assert.equal(end, 10);
  assert.deepEqual([...out], [
    0xee,
    0xee,
    0xee,
    1,
    192,
    0,
    2,
    1,
    0x01,
    0xbb,
    ...new Array<number>(10).fill(0xee),
  ]);
});

// Several messages in one read.

Deno.test("readGreeting(), readPasswordAuthRequest() and readRequest() parse one merged chunk", async () => {
  const payload = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  const auth = { username: "alice", password: "s3cret" };
  const request = { command: Command.Connect, target: NAME_TARGET };
  const bytes = concat(
    encodeGreeting({ methods: [AuthMethod.UsernamePassword] }),
    encodePasswordAuthRequest(auth),
    encodeRequest(request),
    payload,
  );
  const reader = oneChunk(bytes);
  assert.deepEqual(await readGreeting(reader), { methods: [2] });
  assert.deepEqual(await readPasswordAuthRequest(reader), auth);
  assert.deepEqual(await readRequest(reader), request);
  assert.equal(reader.buffered, payload.length);
  assert.deepEqual(reader.takeBuffered(), payload);
  assert.equal(reader.buffered, 0);
  await assert.rejects(reader.readByte(), TruncatedMessageError);
});

Deno.test("readGreeting() and readRequest() leave no stray bytes when nothing follows", async () => {
  const bytes = concat(
    encodeGreeting({ methods: [0] }),
    encodeRequest({ command: 1, target: V6_TARGET }),
  );
  for (const reader of [oneChunk(bytes), byteByByte(bytes)]) {
    await readGreeting(reader);
    await readRequest(reader);
    assert.deepEqual(reader.takeBuffered(), new Uint8Array(0));
  }
});

Deno.test("readRequest() leaves pipelined payload split over reads for takeBuffered()", async () => {
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const request = encodeRequest({ command: 1, target: V4_TARGET });
  const all = concat(request, payload);
  // Request and the start of the payload in one read, the rest in a later one.
  const reader = new ExactReader(new ChunkSource(all.subarray(0, 50), all.subarray(50)));
  await readRequest(reader);
  assert.deepEqual(reader.takeBuffered(), payload.subarray(0, 50 - request.length));
});

// UDP.

Deno.test("encodeUdpDatagram() lays out RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA", () => {
  assert.deepEqual(
    encodeUdpDatagram({ fragment: 0, target: V4_TARGET, payload: Uint8Array.of(9, 8, 7) }),
    Uint8Array.of(0, 0, 0, 1, 192, 0, 2, 1, 0x01, 0xbb, 9, 8, 7),
  );
});

Deno.test("decodeUdpDatagram() round-trips every address type and FRAG value", () => {
  const payloads = [
    new Uint8Array(0),
    Uint8Array.of(0),
    Uint8Array.from({ length: 1400 }, (_, i) => i),
  ];
  for (const target of TARGETS) {
    for (const fragment of [0, 1, 0x7f, 0x80, 0x81, 0xff]) {
      for (const payload of payloads) {
        const decoded = decodeUdpDatagram(encodeUdpDatagram({ fragment, target, payload }));
        assert.equal(decoded.fragment, fragment);
        assert.deepEqual(decoded.target, target);
        assert.deepEqual(decoded.payload, payload);
      }
    }
  }
});

Deno.test("decodeUdpDatagram() returns the payload as a view into the input", () => {
  for (const target of TARGETS) {
    const bytes = encodeUdpDatagram({ fragment: 0, target, payload: Uint8Array.of(1, 2, 3, 4) });
    // Decode from a sub-view to check the offset is relative to the view, not the buffer.
    const framed = new Uint8Array(bytes.length + 8);
    framed.set(bytes, 5);
    const view = framed.subarray(5, 5 + bytes.length);
    const decoded = decodeUdpDatagram(view);
    assert.equal(decoded.payload.buffer, framed.buffer);
    assert.equal(decoded.payload.byteOffset, 5 + 3 + targetLength(target));
    assert.equal(decoded.payload.length, 4);
    view[view.length - 1] = 99;
    assert.equal(decoded.payload[3], 99);
    // The address is a copy: changing the input later does not change it.
    view[4]! ^= 0xff;
    assert.deepEqual(decoded.target, target);
  }
});

Deno.test("decodeUdpDatagram() rejects a header truncated at every length", () => {
  for (const target of TARGETS) {
    const bytes = encodeUdpDatagram({ fragment: 0, target, payload: new Uint8Array(0) });
    for (let length = 0; length < bytes.length; length++) {
      assert.throws(
        () => decodeUdpDatagram(bytes.subarray(0, length)),
        SocksProtocolError,
        `length ${length}`,
      );
    }
    assert.deepEqual(decodeUdpDatagram(bytes).payload, new Uint8Array(0));
  }
});

Deno.test("decodeUdpDatagram() rejects a non-zero RSV", () => {
  const bytes = encodeUdpDatagram({ fragment: 0, target: V4_TARGET, payload: Uint8Array.of(1) });
  for (const [index, value] of [[0, 1], [1, 1], [0, 0xff], [1, 0x80]] as const) {
    const copy = bytes.slice();
    copy[index] = value;
    assert.throws(() => decodeUdpDatagram(copy), SocksProtocolError);
  }
});

Deno.test("decodeUdpDatagram() rejects unknown ATYP, empty names and NUL in names", () => {
  for (const atyp of [0, 2, 5, 0xff]) {
    assert.throws(
      () => decodeUdpDatagram(Uint8Array.of(0, 0, 0, atyp, 1, 2, 3, 4, 0, 53)),
      SocksProtocolError,
    );
  }
  assert.throws(() => decodeUdpDatagram(Uint8Array.of(0, 0, 0, 3, 0, 0, 53)), SocksProtocolError);
  assert.throws(
    () => decodeUdpDatagram(Uint8Array.of(0, 0, 0, 3, 3, 0x61, 0, 0x62, 0, 53)),
    SocksProtocolError,
  );
});

Deno.test("encodeUdpDatagram() rejects over-long names and bad ports", () => {
  const encode = (target: SocksTarget) =>
    encodeUdpDatagram({ fragment: 0, target, payload: new Uint8Array(0) });
  assert.throws(
    () => encode({ address: { family: "name", name: "a".repeat(256) }, port: 1 }),
    RangeError,
  );
  assert.throws(() => encode({ address: { family: "name", name: "" }, port: 1 }), RangeError);
  assert.throws(() => encode({ address: V4_TARGET.address, port: 70000 }), RangeError);
});

Deno.test("readRequest() decodes torsocks' RESOLVE and encodeReply() its answers", async () => {
  // As torsocks 2.4.0 sends it: an uninitialised port after the name.
  const sent = Uint8Array.from([
    5,
    0xf0,
    0,
    3,
    19,
    ...new TextEncoder().encode("v6.dualgate.example"),
    0x00,
    0x2a,
  ]);
  const request = await readRequest(oneChunk(sent));
  assert.equal(request.command, Command.Resolve);
  assert.deepEqual(request.target, {
    address: { family: "name", name: "v6.dualgate.example" },
    port: 42,
  });
  // RESOLVE: the address in BND.ADDR; RESOLVE_PTR: the name.
  assert.deepEqual(
    [...encodeReply({ reply: 0, bound: { address: V4_TARGET.address, port: 0 } })].slice(0, 4),
    [5, 0, 0, 1],
  );
  const named = encodeReply({
    reply: 0,
    bound: { address: { family: "name", name: "a.example" }, port: 0 },
  });
  assert.deepEqual([...named.subarray(0, 5)], [5, 0, 0, 3, 9]);
  assert.equal(Command.ResolvePtr, 0xf1);
});

// One form per address: IPv4-mapped IPv6 on the wire is IPv4.

const MAPPED_CASES: [number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0, 0, 0]], // ::ffff:0.0.0.0, "this host"
  [[127, 0, 0, 1], [127, 0, 0, 1]],
  [[10, 1, 2, 3], [10, 1, 2, 3]],
];

function mappedBytes(v4: number[]): Uint8Array {
  return Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4);
}

Deno.test("readRequest() returns an IPv4-mapped DST.ADDR (ATYP 4) as IPv4", async () => {
  for (const [v4, expected] of MAPPED_CASES) {
    const bytes = Uint8Array.of(5, 1, 0, AddressType.Ipv6, ...mappedBytes(v4), 0, 80);
    const request = await decodeEveryWay(bytes, readRequest);
    assert.deepEqual(request.target, {
      address: { family: 4, bytes: Uint8Array.from(expected) },
      port: 80,
    });
  }
  // Near misses stay IPv6: ::fffe:a.b.c.d, ::a.b.c.d (IPv4-compatible), 1::ffff:a.b.c.d.
  for (
    const bytes of [
      Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 10, 1, 2, 3),
      Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1),
      Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3),
    ]
  ) {
    const request = await readRequest(oneChunk(Uint8Array.of(5, 1, 0, 4, ...bytes, 0, 80)));
    assert.deepEqual(request.target.address, { family: 6, bytes });
  }
});

Deno.test("readReply() returns an IPv4-mapped BND.ADDR as IPv4", async () => {
  const reply = await readReply(
    oneChunk(Uint8Array.of(5, 0, 0, AddressType.Ipv6, ...mappedBytes([192, 0, 2, 1]), 4, 0)),
  );
  assert.deepEqual(reply.bound, {
    address: { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) },
    port: 1024,
  });
});

Deno.test("decodeUdpDatagram() returns an IPv4-mapped DST.ADDR as IPv4", () => {
  for (const [v4, expected] of MAPPED_CASES) {
    const bytes = Uint8Array.of(0, 0, 0, AddressType.Ipv6, ...mappedBytes(v4), 0, 53, 7, 7);
    const datagram = decodeUdpDatagram(bytes);
    assert.deepEqual(datagram.target, {
      address: { family: 4, bytes: Uint8Array.from(expected) },
      port: 53,
    });
    assert.deepEqual([...datagram.payload], [7, 7]);
  }
});
