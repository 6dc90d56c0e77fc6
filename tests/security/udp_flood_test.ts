/**
 * F5: a UDP ASSOCIATE client floods the gateway with datagrams to new names that never resolve,
 * against an in-process gateway whose resolver never answers (its queries wait for their
 * abort). Each such datagram used to start a lookup and pin a copy of itself until the lookup
 * timed out: about 650 MB per association at the default rate and datagram size.
 *
 * What must hold: at most `MAX_PENDING_LOOKUPS` names in flight per association, at most 4
 * datagrams held per destination, at most `heldDatagrams.share` bytes (an eighth of the budget)
 * held per association and `heldDatagrams.limit` across associations, every refused datagram counted (`pending` in the connection record), and the
 * association's end aborting its lookups and giving every held byte back. Counters and caps
 * only: no timing or memory thresholds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../gateway/config/load.ts";
import { type ConnectionRecord, startGateway } from "../../gateway/mod.ts";
import { heldDatagrams, MAX_PENDING_LOOKUPS } from "../../gateway/commands/udp_associate.ts";
import { formatIp, type IpAddress, parseIp } from "../../net/address.ts";
import { Resolver } from "../../resolver/mod.ts";
import {
  encodeGreeting,
  encodeRequest,
  encodeUdpDatagram,
  readMethodSelection,
  readReply,
} from "../../socks5/codec.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { writeAll } from "../helpers/streams.ts";

const PAYLOAD = new Uint8Array(60_000);
const MAX_HELD = 4;

/** A resolver whose every query waits for its abort: a name server that swallows queries. */
function blackholeResolver(config: ReturnType<typeof parseConfig>) {
  const queries: { name: string; signal: AbortSignal }[] = [];
  const resolver = new Resolver({ ...config.resolver, hostsFile: "" }, {
    query: (name, _type, { signal }) => {
      queries.push({ name, signal });
      return new Promise((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
    queryPtr: () => Promise.resolve([]),
  });
  /** Names with a query still waiting. */
  const inFlight = () => new Set(queries.filter((q) => !q.signal.aborted).map((q) => q.name));
  return { resolver, queries, inFlight };
}

/** One association: its control connection, client socket and echo-checked sender. */
class Flooder {
  readonly control: Deno.TcpConn;
  readonly socket: Deno.DatagramConn;
  readonly relay: Deno.NetAddr;
  readonly #echo: SocksTarget;
  #marks = 0;

  private constructor(control: Deno.TcpConn, relay: Deno.NetAddr, echoPort: number) {
    this.control = control;
    this.relay = relay;
    this.socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    this.#echo = { address: parseIp("127.0.0.1")!, port: echoPort };
  }

  static async open(gateway: Deno.ConnectOptions, echoPort: number): Promise<Flooder> {
    const control = await Deno.connect(gateway);
    const reader = new ExactReader(control);
    await writeAll(control, encodeGreeting({ methods: [0] }));
    assert.equal(await readMethodSelection(reader), 0);
    await writeAll(
      control,
      encodeRequest({ command: 3, target: { address: parseIp("0.0.0.0")!, port: 0 } }),
    );
    const reply = await readReply(reader);
    assert.equal(reply.reply, 0);
    const relay: Deno.NetAddr = {
      transport: "udp",
      hostname: formatIp(reply.bound.address as IpAddress),
      port: reply.bound.port,
    };
    const flooder = new Flooder(control, relay, echoPort);
    // The echo destination is resolved first: a ready row, for the marks below.
    await flooder.mark();
    return flooder;
  }

  /**
   * Sends a datagram to the echo peer and waits for it to come back: the gateway's receive loop
   * has handled everything sent before (and no socket buffer overflows under the flood).
   */
  async mark(): Promise<void> {
    const text = `mark ${this.#marks++}`;
    const bytes = encodeUdpDatagram({
      fragment: 0,
      target: this.#echo,
      payload: new TextEncoder().encode(text),
    });
    await this.socket.send(bytes, this.relay);
    const buffer = new Uint8Array(70_000);
    for (let i = 0; i < 100; i++) {
      const [data] = await this.socket.receive(buffer);
      if (new TextDecoder().decode(data).endsWith(text)) return;
    }
    throw new Error(`mark ${text} never came back`);
  }

  /** Sends one 60 KB datagram to `name`, then marks. */
  async flood(name: string): Promise<void> {
    await this.socket.send(
      encodeUdpDatagram({
        fragment: 0,
        target: { address: { family: "name", name }, port: 9 },
        payload: PAYLOAD,
      }),
      this.relay,
    );
    await this.mark();
  }

  /** Ends the association (its control connection) and closes the client socket. */
  close(): void {
    try {
      this.control.close();
    } catch { /* closed */ }
    try {
      this.socket.close();
    } catch { /* closed */ }
  }
}

function pendingDrops(record: ConnectionRecord): number {
  return Number(/pending=(\d+)/.exec(record.reason ?? "")?.[1] ?? 0);
}

Deno.test("UDP flood to names that never resolve: lookups, held datagrams and held bytes stay capped", async () => {
  const config = parseConfig(`listen: ["127.0.0.1:0"]
timeouts: { connect: 600 }
resolver: { timeout: 600 }
rules: [{ action: allow, commands: [udp] }]
`);
  const { resolver, queries, inFlight } = blackholeResolver(config);
  const records: ConnectionRecord[] = [];
  const gateway = startGateway(config, { resolver, onRecord: (r) => records.push(r) });
  const echo = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    try {
      while (true) {
        const [data, from] = await echo.receive();
        await echo.send(data, from);
      }
    } catch { /* closed */ }
  })();
  const endpoint = gateway.endpoints[0]!;
  const gatewayAddr: Deno.ConnectOptions = {
    hostname: formatIp(endpoint.address),
    port: endpoint.port,
  };
  const echoPort = (echo.addr as Deno.NetAddr).port;
  const flooders: Flooder[] = [];
  try {
    // One association: 100 new names, then 4 more datagrams to each of the first 8.
    const first = await Flooder.open(gatewayAddr, echoPort);
    flooders.push(first);
    const NAMES = 100;
    for (let i = 0; i < NAMES; i++) await first.flood(`n${i}.flood.example`);
    for (let round = 0; round < MAX_HELD; round++) {
      for (let i = 0; i < MAX_PENDING_LOOKUPS; i++) await first.flood(`n${i}.flood.example`);
    }
    const names = inFlight();
    assert.equal(names.size, MAX_PENDING_LOOKUPS, `names in flight: ${[...names].join(" ")}`);
    // One association holds no more than its share, an eighth of the budget (review2 R8).
    assert.ok(heldDatagrams.bytes <= heldDatagrams.limit / 8, `${heldDatagrams.bytes} held`);
    assert.ok(heldDatagrams.bytes > heldDatagrams.share - PAYLOAD.length);

    // More associations, each holding as much: the process-wide budget holds.
    const perAssociation = heldDatagrams.share;
    const associations = Math.ceil(heldDatagrams.limit / perAssociation) + 1;
    for (let a = 1; a < associations; a++) {
      const flooder = await Flooder.open(gatewayAddr, echoPort);
      flooders.push(flooder);
      for (let round = 0; round < MAX_HELD; round++) {
        for (let i = 0; i < MAX_PENDING_LOOKUPS; i++) await flooder.flood(`a${a}-${i}.example`);
      }
    }
    assert.ok(heldDatagrams.bytes <= heldDatagrams.limit, `${heldDatagrams.bytes} held`);
    assert.ok(heldDatagrams.bytes > heldDatagrams.limit - PAYLOAD.length);
    assert.equal(inFlight().size, associations * MAX_PENDING_LOOKUPS);

    // The associations end: their lookups are aborted and every held byte is given back.
    for (const flooder of flooders) flooder.close();
    for (let i = 0; i < 500 && records.length < associations; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(records.length, associations);
    assert.equal(heldDatagrams.bytes, 0);
    assert.equal(inFlight().size, 0, "every lookup aborted");
    assert.ok(queries.length > 0);
    // Every flood datagram was dropped, counted `pending`: refused (a ninth lookup, a fifth
    // datagram for one destination, the budget) or held, then released at the end.
    const total = records.reduce((sum, r) => sum + pendingDrops(r), 0);
    const sent = NAMES + MAX_HELD * MAX_PENDING_LOOKUPS +
      (associations - 1) * MAX_HELD * MAX_PENDING_LOOKUPS;
    assert.equal(total, sent, records.map((r) => r.reason).join("\n"));
  } finally {
    for (const flooder of flooders) flooder.close();
    await gateway.stop(0);
    echo.close();
    await echoing;
  }
});
