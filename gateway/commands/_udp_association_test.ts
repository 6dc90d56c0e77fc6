import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { encodeUdpDatagram } from "../../socks5/codec.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import {
  ClientFilter,
  type Destination,
  DestinationTable,
  HeldBudget,
  resolvedPeer,
  UdpCounters,
  udpHeaderLength,
} from "./_udp_association.ts";

const payload = Uint8Array.of(1, 2, 3);
const targets: [string, SocksTarget, number][] = [
  ["IPv4", { address: parseIp("192.0.2.1")!, port: 53 }, 10],
  ["IPv6", { address: parseIp("2001:db8::1")!, port: 53 }, 22],
  ["name", { address: { family: "name", name: "v6.dualgate.example" }, port: 7 }, 7 + 19],
];

for (const [kind, target, length] of targets) {
  Deno.test(`udpHeaderLength() measures an ${kind} header and refuses every truncation`, () => {
    const bytes = encodeUdpDatagram({ fragment: 0, target, payload });
    assert.equal(udpHeaderLength(bytes, bytes.length), length);
    for (let cut = 0; cut < length; cut++) assert.equal(udpHeaderLength(bytes, cut), -1, `${cut}`);
    // FRAG is the caller's to judge.
    const fragment = encodeUdpDatagram({ fragment: 1, target, payload });
    assert.equal(udpHeaderLength(fragment, fragment.length), length);
  });
}

Deno.test("udpHeaderLength() refuses RSV != 0, an unknown ATYP, an empty name and port 0", () => {
  const good = encodeUdpDatagram({ fragment: 0, target: targets[0]![1], payload });
  for (const [at, value] of [[0, 1], [1, 1], [3, 2], [3, 5]] as const) {
    const bad = good.slice();
    bad[at] = value;
    assert.equal(udpHeaderLength(bad, bad.length), -1, `byte ${at} = ${value}`);
  }
  assert.equal(udpHeaderLength(Uint8Array.of(0, 0, 0, 3, 0, 0, 53), 7), -1);
  const portZero = encodeUdpDatagram({
    fragment: 0,
    target: { ...targets[1]![1], port: 0 },
    payload,
  });
  assert.equal(udpHeaderLength(portZero, portZero.length), -1);
});

Deno.test("ClientFilter accepts only the client's address, and its declared port", () => {
  const one = new ClientFilter(parseIp("2001:db8:1::2")!, 5000);
  assert.equal(one.port, 5000);
  assert.equal(one.accepts("2001:db8:1::2", 5001), false);
  assert.equal(one.accepts("2001:db8:1::2", 5000), true);
  assert.equal(one.accepts("2001:0db8:1:0:0:0:0:2", 5000), true);
  assert.equal(one.accepts("2001:db8:1::3", 5000), false);
  assert.equal(one.hostname, "2001:db8:1::2");
});

Deno.test("ClientFilter without a declared port belongs to the first sender's port", () => {
  const any = new ClientFilter(parseIp("192.0.2.2")!, 0);
  assert.equal(any.port, 0);
  // Another address does not claim it; neither does port 0 (only a crafted datagram has it).
  assert.equal(any.accepts("192.0.2.3", 1234), false);
  assert.equal(any.accepts("2001:db8::2", 1234), false);
  assert.equal(any.accepts("192.0.2.2", 0), false);
  assert.equal(any.port, 0);
  assert.equal(any.accepts("192.0.2.2", 1234), true);
  assert.equal(any.port, 1234);
  // Another port of the same address (another program, or a spoofed source) is foreign now.
  assert.equal(any.accepts("192.0.2.2", 4321), false);
  assert.equal(any.accepts("::ffff:192.0.2.2", 4321), false);
  assert.equal(any.accepts("::ffff:192.0.2.2", 1234), true);
  assert.equal(any.accepts("192.0.2.2", 1234), true);
  assert.equal(any.port, 1234);
});

Deno.test("DestinationTable finds rows by header bytes and peers by socket address", () => {
  const table = new DestinationTable(2);
  const a = encodeUdpDatagram({ fragment: 0, target: targets[0]![1], payload });
  const b = encodeUdpDatagram({ fragment: 0, target: targets[2]![1], payload });
  assert.equal(table.find(a, 3, 10), undefined);
  const rowA = table.add(a, 3, 10, { kind: "pending" });
  assert.equal(table.find(a, 3, 10), rowA);
  rowA.state = { kind: "ready", peer: resolvedPeer(parseIp("192.0.2.1")!, 53) };
  assert.equal(table.findPeer("192.0.2.1", 53)?.port, 53);
  assert.equal(table.findPeer("::ffff:192.0.2.1", 53)?.port, 53);
  assert.equal(table.findPeer("192.0.2.1", 54), undefined);
  table.add(b, 3, 26, { kind: "denied" });
  assert.equal(table.find(b, 3, 26)?.state.kind, "denied");
  table.add(b, 3, 26, { kind: "denied" });
  assert.equal(table.size, 2);
  assert.equal(table.find(a, 3, 10), undefined, "the oldest row went");
});

Deno.test("resolvedPeer() prepares the reply header naming the peer", () => {
  const peer = resolvedPeer(parseIp("2001:db8:2::2")!, 7);
  assert.deepEqual(peer.netAddr, { transport: "udp", hostname: "2001:db8:2::2", port: 7 });
  assert.deepEqual(
    peer.replyHeader,
    encodeUdpDatagram({
      fragment: 0,
      target: { address: parseIp("2001:db8:2::2")!, port: 7 },
      payload: new Uint8Array(0),
    }),
  );
});

Deno.test("UdpCounters.summary() lists only the drops that happened", () => {
  const counters = new UdpCounters();
  counters.datagramsUp = 2;
  assert.equal(counters.summary(), "datagrams up=2 down=0");
  counters.dropped.fragment = 1;
  counters.dropped.foreign = 3;
  assert.equal(counters.summary(), "datagrams up=2 down=0 dropped foreign=3 fragment=1");
});

Deno.test("DestinationTable hands each evicted row to onEvict, so that its held datagrams go", () => {
  const evicted: Destination[] = [];
  const table = new DestinationTable(2, (row) => evicted.push(row));
  const key = (n: number) => Uint8Array.of(1, 192, 0, 2, n, 0, 53);
  const first = table.add(key(1), 0, 7, { kind: "pending" });
  first.held.push(new Uint8Array(100));
  table.add(key(2), 0, 7, { kind: "pending" });
  assert.deepEqual(evicted, []);
  table.add(key(3), 0, 7, { kind: "pending" });
  assert.deepEqual(evicted, [first]);
  assert.equal(table.find(key(1), 0, 7), undefined);
  assert.deepEqual(table.rows.map((row) => row.key[4]), [2, 3]);
});

Deno.test("HeldBudget refuses what would pass its limit and takes back what is released", () => {
  const budget = new HeldBudget(1000);
  const a = new Uint8Array(600);
  const b = new Uint8Array(400);
  assert.ok(budget.take(a.length));
  assert.equal(budget.take(401), false);
  assert.equal(budget.bytes, 600);
  assert.ok(budget.take(b.length));
  assert.equal(budget.bytes, 1000);
  assert.equal(budget.release([a, b]), 2);
  assert.equal(budget.bytes, 0);
});

Deno.test("HeldBudget: four flooding accounts cannot take the whole budget from a fifth", () => {
  const budget = new HeldBudget(8 * 65536, 65536);
  const datagram = new Uint8Array(16384);
  const flooders = [0, 1, 2, 3].map(() => budget.account());
  const held = flooders.map(() => [] as Uint8Array[]);
  // Each flooder tries to hold 8 lookups × 4 datagrams: its share stops it at 4.
  for (const [i, account] of flooders.entries()) {
    for (let k = 0; k < 32; k++) if (account.take(datagram.length)) held[i]!.push(datagram);
    assert.equal(account.bytes, 65536);
    assert.equal(held[i]!.length, 4);
  }
  assert.equal(budget.bytes, 4 * 65536);
  // A fifth association still holds its first datagrams.
  const fifth = budget.account();
  assert.ok(fifth.take(datagram.length));
  assert.equal(budget.bytes, 4 * 65536 + datagram.length);
  // Released bytes go back to the account and the budget.
  assert.equal(flooders[0]!.release(held[0]!), 4);
  assert.equal(flooders[0]!.bytes, 0);
  assert.ok(flooders[0]!.take(65536));
  assert.equal(flooders[0]!.take(1), false);
  assert.equal(budget.bytes, 4 * 65536 + datagram.length);
});

Deno.test("HeldBudget: an account within its share still stops at the budget's limit", () => {
  const budget = new HeldBudget(1000, 600);
  const a = budget.account();
  const b = budget.account();
  assert.ok(a.take(600));
  assert.equal(b.take(401), false);
  assert.equal(b.bytes, 0);
  assert.ok(b.take(400));
  assert.equal(budget.bytes, 1000);
});
