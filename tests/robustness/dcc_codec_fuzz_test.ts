/**
 * Fuzzes the IRC DCC codec with mutated DCC requests and IRC lines: parsing never throws, a
 * request it accepts formats to one normal form that parses back to the same request (so what
 * the translator sends is what it checked), and CTCP splitting round-trips every text.
 */
import assert from "node:assert/strict";
import {
  formatDcc,
  joinCtcp,
  parseDcc,
  parseTextMessage,
  splitCtcp,
} from "../../translators/irc_dcc/codec.ts";
import { SeededRandom } from "./_random.ts";

const SEEDS = [1, 2, 3, 0xdcc, 0xbeef];
const CASES_PER_SEED = 2000;

const VALID = [
  "DCC SEND file.bin 3221225986 5000 1048576",
  'DCC SEND "a file.txt" 2001:db8:1::2 5001 12 7',
  "DCC CHAT chat 2130706433 6000",
  "DCC CHAT chat 2001:db8::1 0 42",
  "DCC RESUME file.bin 5000 1024",
  "DCC ACCEPT file.bin 0 1024 9",
];

const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);
const bytesOf = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

Deno.test("DCC codec fuzz: parse never throws, accepted requests have one normal form", () => {
  let accepted = 0;
  for (const seed of SEEDS) {
    const random = new SeededRandom(seed);
    for (let i = 0; i < CASES_PER_SEED; i++) {
      const body = latin1(random.mutate(bytesOf(VALID[random.below(VALID.length)]!)));
      const parsed = parseDcc(body);
      if (!parsed.ok) continue;
      accepted++;
      const normal = formatDcc(parsed.request);
      // Control bytes must never be sent.
      assert.ok(![...normal].some((c) => c < " " || c === "\x7f"), JSON.stringify(body));
      const again = parseDcc(normal);
      assert.ok(again.ok, `seed ${seed} case ${i}: ${JSON.stringify(normal)}`);
      assert.deepEqual(again.request, parsed.request, `seed ${seed} case ${i}`);
      assert.equal(formatDcc(again.request), normal);
    }
  }
  assert.ok(accepted > 0, "some mutations stay valid");
});

Deno.test("DCC codec fuzz: CTCP split/join round-trips, message parsing never throws", () => {
  for (const seed of SEEDS) {
    const random = new SeededRandom(seed);
    for (let i = 0; i < CASES_PER_SEED; i++) {
      const line = latin1(
        random.mutate(bytesOf(`:n!u@h PRIVMSG bob :x\x01${VALID[random.below(VALID.length)]}\x01`)),
      );
      const message = parseTextMessage(line);
      if (message) assert.equal(message.head + message.text, line);
      assert.equal(joinCtcp(splitCtcp(line)), line, `seed ${seed} case ${i}`);
    }
  }
});
