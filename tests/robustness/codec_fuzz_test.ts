/**
 * Fuzzes the SOCKS5 codec with random and mutated messages: every input either decodes or fails
 * with a protocol error, never with anything else (no RangeError, TypeError or hang).
 */
import assert from "node:assert/strict";
import {
  decodeUdpDatagram,
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  encodeUdpDatagram,
  readGreeting,
  readPasswordAuthRequest,
  readRequest,
} from "../../socks5/codec.ts";
import { SocksProtocolError } from "../../socks5/errors.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import type { ByteSource, SocksTarget } from "../../socks5/types.ts";
import { SeededRandom } from "./_random.ts";

/** Feeds `bytes` in random-sized pieces, then end of stream. */
class ChunkedSource implements ByteSource {
  #bytes: Uint8Array;
  #offset = 0;
  #random: SeededRandom;
  constructor(bytes: Uint8Array, random: SeededRandom) {
    this.#bytes = bytes;
    this.#random = random;
  }
  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#offset >= this.#bytes.length) return Promise.resolve(null);
    const n = Math.min(buffer.length, 1 + this.#random.below(8), this.#bytes.length - this.#offset);
    buffer.set(this.#bytes.subarray(this.#offset, this.#offset + n));
    this.#offset += n;
    return Promise.resolve(n);
  }
}

const TARGETS: SocksTarget[] = [
  { address: { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) }, port: 80 },
  { address: { family: 6, bytes: new Uint8Array(16).fill(0x20) }, port: 443 },
  { address: { family: "name", name: "v6.dualgate.example" }, port: 21 },
  { address: { family: "name", name: "x".repeat(255) }, port: 65535 },
];

const CASES = Number(Deno.env.get("DUALGATE_FUZZ_CASES") ?? 100_000);

async function fuzzStream(
  seeds: Uint8Array[],
  decode: (reader: ExactReader) => Promise<unknown>,
  random: SeededRandom,
): Promise<{ ok: number; refused: number }> {
  let ok = 0, refused = 0;
  for (let i = 0; i < CASES; i++) {
    const input = random.below(10) === 0
      ? random.bytes(random.below(300))
      : random.mutate(seeds[random.below(seeds.length)]!);
    try {
      await decode(new ExactReader(new ChunkedSource(input, random)));
      ok++;
    } catch (error) {
      if (!(error instanceof SocksProtocolError)) {
        throw new Error(`input ${Array.from(input)} threw ${error}`, { cause: error });
      }
      refused++;
    }
  }
  return { ok, refused };
}

Deno.test("readGreeting() on random and mutated input decodes or refuses, never crashes", async () => {
  const random = new SeededRandom(1);
  const seeds = [encodeGreeting({ methods: [0] }), encodeGreeting({ methods: [0, 1, 2] })];
  const { ok, refused } = await fuzzStream(seeds, readGreeting, random);
  assert.ok(ok > 0 && refused > 0, `ok ${ok} refused ${refused}`);
});

Deno.test("readRequest() on random and mutated input decodes or refuses, never crashes", async () => {
  const random = new SeededRandom(2);
  const seeds = TARGETS.map((target) => encodeRequest({ command: 1, target }));
  const { ok, refused } = await fuzzStream(seeds, readRequest, random);
  assert.ok(ok > 0 && refused > 0, `ok ${ok} refused ${refused}`);
});

Deno.test("readPasswordAuthRequest() on random and mutated input decodes or refuses", async () => {
  const random = new SeededRandom(3);
  const seeds = [
    encodePasswordAuthRequest({ username: "alice", password: "change-me" }),
    encodePasswordAuthRequest({ username: "u".repeat(255), password: "p".repeat(255) }),
  ];
  const { ok, refused } = await fuzzStream(seeds, readPasswordAuthRequest, random);
  assert.ok(ok > 0 && refused > 0, `ok ${ok} refused ${refused}`);
});

Deno.test("decodeUdpDatagram() on random and mutated input decodes or refuses", () => {
  const random = new SeededRandom(4);
  const seeds = TARGETS.map((target) =>
    encodeUdpDatagram({ fragment: 0, target, payload: random.bytes(random.below(64)) })
  );
  let ok = 0, refused = 0;
  for (let i = 0; i < CASES * 2; i++) {
    const input = random.below(10) === 0
      ? random.bytes(random.below(300))
      : random.mutate(seeds[random.below(seeds.length)]!);
    try {
      const datagram = decodeUdpDatagram(input);
      // A decoded datagram re-encodes to the same bytes.
      assert.deepEqual(encodeUdpDatagram(datagram), input);
      ok++;
    } catch (error) {
      if (!(error instanceof SocksProtocolError)) {
        throw new Error(`input ${Array.from(input)} threw ${error}`, { cause: error });
      }
      refused++;
    }
  }
  assert.ok(ok > 0 && refused > 0, `ok ${ok} refused ${refused}`);
});
