/**
 * UDP ASSOCIATE (RFC 1928 §4, §7) across address families (RFC 3089 §2).
 *
 * - The client-facing socket is bound to the gateway address the client reached (the control
 *   connection's local address), and that address, or the configured `udp.public_address`
 *   of its family, is BND.ADDR: never a wildcard.
 * - The association belongs to one client endpoint: the control connection's IP address and
 *   DST.PORT of the request, or, when that is 0, the source port of the first datagram from
 *   that address. Datagrams from any other source (another port of the same host included)
 *   are dropped and counted as `foreign`; replies go to the owner only. FRAG ≠ 0 is dropped
 *   (no reassembly), and counted.
 * - Destinations may be IPv4, IPv6 or a name, resolved by the gateway's resolver; each goes
 *   out of a socket of its own family, so a v4 client talks to a v6-only peer and the
 *   reverse. Rules (command `udp`) are evaluated per destination.
 * - Replies carry the header naming the peer that sent them; only peers the client has
 *   written to are relayed back.
 * - The association lives exactly as long as the TCP control connection, ended early by the
 *   idle limit or shutdown; a per-association limit on datagram size, and flood limits on the
 *   datagram rate of each direction per client and in total ({@linkcode UdpRateBudget}).
 * - A new destination is looked up off the receive loop, holding its first datagrams: at most
 *   {@linkcode MAX_PENDING_LOOKUPS} lookups per association, 4 datagrams per destination, and
 *   {@linkcode heldDatagrams} bytes across associations, an eighth of them per association; beyond, datagrams are dropped
 *   (`pending`). A destination evicted from the table, or the association's end, releases what
 *   it held; the end aborts its lookups.
 * - Egress (gateway/upstream/egress.ts): a destination's pool is the user's, else that of the
 *   route it matches when the route has no chain. The outbound socket of a family is bound to
 *   the source the pool picks for the association's first destination of that family (one
 *   source per family and association, like one per TCP connection); a destination whose pool
 *   has no source of any of its families is dropped (`no_egress`), never sent from the host's
 *   default address.
 *
 * @module
 */

import { formatIp, type IpAddress, type IpEndpoint } from "../../net/address.ts";
import { closeQuietly } from "../../net/io.ts";
import {
  lookupCandidates,
  type RecordBase,
  recordBaseOf,
  rejectForError,
  replySucceeded,
  ruleSubjectsOf,
  withExtraDescriptors,
} from "./_request_context.ts";
import { decodeUdpDatagram } from "../../socks5/codec.ts";
import { Reply, type SocksTarget } from "../../socks5/types.ts";
import { IdleSweeper } from "../relay/idle_sweeper.ts";
import {
  ClientFilter,
  type Destination,
  DestinationTable,
  type DropReason,
  HeldBudget,
  MAX_REPLY_HEADER,
  type ResolvedPeer,
  resolvedPeer,
  UdpCounters,
  udpHeaderLength,
} from "./_udp_association.ts";
import { clientKey } from "../access/client_key.ts";
import { type UdpDirection, UdpRateBudget, type UdpRateShare } from "../limits/udp_rate.ts";
import { logger } from "../observe/log.ts";
import {
  egressKeyOf,
  type EgressPool,
  egressPoolFor,
  type EgressSource,
} from "../upstream/egress.ts";
import type { Handshaken, SessionServices } from "../session_types.ts";

const log = logger("udp");
const sweeper = new IdleSweeper();

/** Datagrams held per destination while its name resolves. */
const MAX_HELD = 4;
/**
 * Destination lookups in flight per association: a datagram to yet another new destination is
 * dropped (`pending`) until one settles, so that a flood of names that never resolve pins
 * neither lookups nor datagrams.
 */
export const MAX_PENDING_LOOKUPS = 8;
/**
 * Datagrams held while their destinations resolve, across every association of this process
 * (8 MiB), at most an eighth of it (1 MiB) per association: beyond, a datagram that would be
 * held is dropped (`pending`).
 */
export const heldDatagrams: HeldBudget = new HeldBudget(8 * 1024 * 1024, 1024 * 1024);
/** How long a name that did not resolve stays unresolved before it is asked again. */
const UNRESOLVED_RETRY_MS = 5000;

/** The flood limits of this process, made anew when the configured rates change (a reload). */
let rateBudget: UdpRateBudget | undefined;

function rateBudgetFor(services: SessionServices): UdpRateBudget {
  const { rate, totalRate } = services.config.udp;
  if (rateBudget?.rates.perClient !== rate || rateBudget.rates.total !== totalRate) {
    rateBudget = new UdpRateBudget({ perClient: rate, total: totalRate });
  }
  return rateBudget;
}

/** Handles a UDP ASSOCIATE request after the handshake; never throws. */
export async function handleUdpAssociate(
  session: Handshaken,
  services: SessionServices,
): Promise<void> {
  const base = recordBaseOf(session, "udp");

  // Beyond the control connection's two descriptors (it has no outbound socket): the client
  // socket and one peer socket per family.
  await withExtraDescriptors(session, services, "udp", 2, () => associate(session, services, base));
}

async function associate(
  session: Handshaken,
  services: SessionServices,
  base: RecordBase,
): Promise<void> {
  const { local } = session;
  let clientSocket: Deno.DatagramConn;
  try {
    clientSocket = Deno.listenDatagram({
      transport: "udp",
      hostname: formatIp(local.address),
      port: 0,
    });
  } catch (error) {
    await rejectForError(session, services, base, error, "Cannot open UDP relay socket: ");
    return;
  }
  const family = local.address.family;
  const bound =
    (family === 4 ? services.config.udp.publicAddress.v4 : services.config.udp.publicAddress.v6) ??
      local.address;
  const boundPort = (clientSocket.addr as Deno.NetAddr).port;

  const answered = await replySucceeded(
    session,
    services,
    { address: bound, port: boundPort },
    { record: base, release: () => clientSocket.close() },
  );
  if (!answered) return;

  const association = new Association(session, services, clientSocket);
  services.metrics?.activeRelays.inc(["udp"]);
  const end = await association.run()
    .finally(() => services.metrics?.activeRelays.dec(["udp"]));
  services.record({
    ...base,
    ...(association.lastPeer !== undefined ? { used: association.lastPeer } : {}),
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: association.counters.bytesUp,
    bytesDown: association.counters.bytesDown,
    reason: `${end}; ${association.counters.summary()}`,
  });
}

/** Why an association ended. */
type AssociationEnd = "closed" | "idle" | "aborted" | "error";

/** One running association: its sockets, loops and state. */
class Association {
  readonly counters = new UdpCounters();
  /** The last peer a datagram was sent to, for the connection record. */
  lastPeer: IpEndpoint | undefined;
  readonly #session: Handshaken;
  readonly #services: SessionServices;
  readonly #clientSocket: Deno.DatagramConn;
  readonly #filter: ClientFilter;
  readonly #rates: UdpRateShare;
  readonly #table = new DestinationTable(64, (row) => this.#release(row, true));
  /** Destination lookups in flight (see {@linkcode MAX_PENDING_LOOKUPS}). */
  #pendingLookups = 0;
  /** This association's part of {@linkcode heldDatagrams}. */
  readonly #held = heldDatagrams.account();
  readonly #activity = { active: true };
  readonly #maxDatagram: number;
  readonly #outbound: { 4?: Deno.DatagramConn; 6?: Deno.DatagramConn } = {};
  /** Each pool's pick for this association (keyed by the first destination that asked). */
  readonly #egress = new Map<EgressPool, EgressSource>();
  /** The source each family's outbound socket is to be bound to (set before it opens). */
  readonly #sources: { 4?: IpAddress; 6?: IpAddress } = {};
  readonly #tasks = new Set<Promise<void>>();
  /** Where replies go: the owner's endpoint, once known (see {@linkcode ClientFilter}). */
  #clientAddr: Deno.NetAddr | undefined;
  #closed = false;
  readonly #abort = new AbortController();
  #end: AssociationEnd = "closed";
  #finished!: () => void;
  readonly #done = new Promise<void>((resolve) => this.#finished = resolve);

  constructor(session: Handshaken, services: SessionServices, clientSocket: Deno.DatagramConn) {
    this.#session = session;
    this.#services = services;
    this.#clientSocket = clientSocket;
    const target = session.request.target;
    // The owner's address is the control connection's, never DST.ADDR: that is often a private
    // address behind NAT, and taking it would let a client aim the replies at a third host.
    // DST.PORT, when given, is the owner's port; else the first datagram's source port is.
    const declaredPort = target.port;
    this.#filter = new ClientFilter(session.client.address, declaredPort);
    if (declaredPort !== 0) {
      this.#clientAddr = { transport: "udp", hostname: this.#filter.hostname, port: declaredPort };
    }
    this.#rates = rateBudgetFor(services).join(
      clientKey(session.client.address, services.config.limits.ipv6ClientPrefix),
    );
    this.#maxDatagram = services.config.udp.maxDatagram;
  }

  /** Runs until the control connection closes, the idle limit, or shutdown. */
  async run(): Promise<AssociationEnd> {
    const onAbort = () => this.#close("aborted");
    const shutdown = this.#services.shutdown;
    shutdown.addEventListener("abort", onAbort, { once: true });
    if (shutdown.aborted) onAbort();
    const idle = sweeper.add(
      this.#activity,
      this.#services.config.udp.idleMs,
      () => this.#close("idle"),
    );
    this.#track(this.#watchControl());
    this.#track(this.#clientLoop());
    try {
      await this.#done;
      // Loops end once their sockets are closed; lookups once their signal or answer comes.
      while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    } finally {
      this.#rates.leave();
      sweeper.remove(idle);
      shutdown.removeEventListener("abort", onAbort);
    }
    return this.#end;
  }

  #track(task: Promise<void>): void {
    const tracked = task.catch(() => {}).finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  #close(why: AssociationEnd): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end = why;
    // Aborts the lookups; the datagrams they held go back to the budget now.
    this.#abort.abort();
    for (const row of this.#table.rows) this.#release(row, true);
    for (const socket of [this.#clientSocket, this.#outbound[4], this.#outbound[6]]) {
      closeQuietly(socket);
    }
    closeQuietly(this.#session.conn);
    this.#finished();
  }

  /**
   * Why a datagram of `size` bytes (the SOCKS header included) may not pass in `direction`:
   * over `udp.max_datagram`, or over the client's or the total flood limit; null when it may.
   * Oversized datagrams are judged first and take no token.
   */
  #refusal(size: number, direction: UdpDirection): DropReason | null {
    return size > this.#maxDatagram ? "oversize" : this.#rates.admit(direction);
  }

  /** Counts a dropped datagram in the association's record and, at once, in the metrics. */
  #drop(reason: DropReason, count = 1): void {
    this.counters.dropped[reason] += count;
    this.#services.metrics?.udpDropped.inc([reason], count);
  }

  /** The association ends with the control connection (RFC 1928 §6). */
  async #watchControl(): Promise<void> {
    const sink = new Uint8Array(512);
    try {
      while ((await this.#session.conn.read(sink)) !== null) { /* ignored */ }
      this.#close("closed");
    } catch {
      this.#close(this.#closed ? this.#end : "closed");
    }
  }

  async #clientLoop(): Promise<void> {
    // One byte more than allowed, so that an oversized datagram shows (Deno truncates).
    const buffer = new Uint8Array(this.#maxDatagram + 1);
    try {
      while (true) {
        const [data, from] = await this.#clientSocket.receive(buffer);
        const n = data.length;
        const source = from as Deno.NetAddr;
        if (!this.#filter.accepts(source.hostname, source.port)) {
          this.#drop("foreign");
          continue;
        }
        // The owner is fixed by now (declared, or this first datagram): replies go there only.
        this.#clientAddr ??= {
          transport: "udp",
          hostname: this.#filter.hostname,
          port: source.port,
        };
        const refusedUp = this.#refusal(n, "up");
        if (refusedUp !== null) {
          this.#drop(refusedUp);
          continue;
        }
        const headerLength = udpHeaderLength(buffer, n);
        if (headerLength < 0) {
          this.#drop("malformed");
          continue;
        }
        if (buffer[2] !== 0) {
          this.#drop("fragment");
          continue;
        }
        this.#activity.active = true;
        let row = this.#table.find(buffer, 3, headerLength);
        const lookup = row === undefined ||
          (row.state.kind === "unresolved" && performance.now() >= row.state.retryAt);
        if (lookup && this.#pendingLookups >= MAX_PENDING_LOOKUPS) {
          this.#drop("pending");
          continue;
        }
        if (row !== undefined && lookup) {
          row.state = { kind: "pending" };
          this.#resolve(row, buffer.subarray(0, n));
        }
        if (row === undefined) {
          row = this.#table.add(buffer, 3, headerLength, { kind: "pending" });
          this.#resolve(row, buffer.subarray(0, n));
        }
        const state = row.state;
        switch (state.kind) {
          case "ready":
            await this.#sendUp(state.peer, buffer.subarray(headerLength, n));
            break;
          case "pending":
            // Never after the end released the rows: those bytes would stay taken.
            if (
              !this.#closed && row.held.length < MAX_HELD && this.#held.take(n - headerLength)
            ) {
              row.held.push(buffer.slice(headerLength, n));
            } else this.#drop("pending");
            break;
          case "denied":
            this.#drop("denied");
            break;
          case "unresolved":
            this.#drop("unresolved");
            break;
          case "no_egress":
            this.#drop("no_egress");
            break;
        }
      }
    } catch (error) {
      if (!this.#closed) {
        log.warn("UDP relay socket failed: {error}", { error });
        this.#close("error");
      }
    }
  }

  async #sendUp(peer: ResolvedPeer, payload: Uint8Array): Promise<void> {
    const socket = this.#outboundFor(peer.address.family);
    if (socket === undefined) {
      this.#drop("send_failed");
      return;
    }
    try {
      await socket.send(payload, peer.netAddr);
      this.lastPeer = peer;
      this.counters.datagramsUp++;
      this.counters.bytesUp += payload.length;
    } catch {
      if (!this.#closed) this.#drop("send_failed");
    }
  }

  /** The outbound socket of `family`, opened on first use with its receive loop. */
  #outboundFor(family: 4 | 6): Deno.DatagramConn | undefined {
    const open = this.#outbound[family];
    if (open !== undefined || this.#closed) return open;
    let socket: Deno.DatagramConn;
    try {
      const source = this.#sources[family];
      socket = Deno.listenDatagram({
        transport: "udp",
        hostname: source ? formatIp(source) : family === 4 ? "0.0.0.0" : "::",
        port: 0,
      });
    } catch (error) {
      log.warn("Cannot open IPv{family} UDP socket: {error}", { family, error });
      return undefined;
    }
    this.#outbound[family] = socket;
    this.#track(this.#peerLoop(socket));
    return socket;
  }

  async #peerLoop(socket: Deno.DatagramConn): Promise<void> {
    const reserve = MAX_REPLY_HEADER;
    const buffer = new Uint8Array(reserve + this.#maxDatagram + 1);
    const into = buffer.subarray(reserve);
    try {
      while (true) {
        const [data, from] = await socket.receive(into);
        const n = data.length;
        const source = from as Deno.NetAddr;
        const peer = this.#table.findPeer(source.hostname, source.port);
        const clientAddr = this.#clientAddr;
        if (peer === undefined || clientAddr === undefined) {
          this.#drop("unknown_peer");
          continue;
        }
        const header = peer.replyHeader;
        const refusedDown = this.#refusal(n + header.length, "down");
        if (refusedDown !== null) {
          this.#drop(refusedDown);
          continue;
        }
        this.#activity.active = true;
        buffer.set(header, reserve - header.length);
        try {
          await this.#clientSocket.send(
            buffer.subarray(reserve - header.length, reserve + n),
            clientAddr,
          );
          this.counters.datagramsDown++;
          this.counters.bytesDown += n;
        } catch {
          if (this.#closed) return;
          this.#drop("send_failed");
        }
      }
    } catch (error) {
      if (!this.#closed) {
        log.warn("UDP peer socket failed: {error}", { error });
        this.#close("error");
      }
    }
  }

  /** Resolves a new destination (off the receive loop), then sends what was held. */
  #resolve(row: Destination, datagram: Uint8Array): void {
    let target: SocksTarget;
    try {
      target = decodeUdpDatagram(datagram).target;
    } catch {
      row.state = { kind: "denied" };
      return;
    }
    this.#pendingLookups++;
    const work = this.#lookup(target).finally(() => this.#pendingLookups--).then(
      async (state) => {
        row.state = state;
        const held = row.held;
        this.#release(row, false);
        if (state.kind !== "ready") {
          this.#drop(state.kind, held.length);
          return;
        }
        for (const payload of held) await this.#sendUp(state.peer, payload);
      },
    );
    this.#track(work);
  }

  /**
   * Gives the datagrams `row` holds back to {@linkcode heldDatagrams} and forgets them;
   * `dropped`: they will never be sent (eviction, the association's end), counted `pending`.
   */
  #release(row: Destination, dropped: boolean): void {
    const count = this.#held.release(row.held);
    row.held = [];
    if (dropped && count > 0) this.#drop("pending", count);
  }

  async #lookup(target: SocksTarget): Promise<Destination["state"]> {
    const services = this.#services;
    const session = this.#session;
    let candidates: IpAddress[];
    try {
      ({ addresses: candidates } = await lookupCandidates(services, target, this.#abort.signal));
    } catch (error) {
      log.debug("UDP destination {name} did not resolve: {error}", {
        name: target.address.family === "name" ? target.address.name : "-",
        error,
      });
      return { kind: "unresolved", retryAt: performance.now() + UNRESOLVED_RETRY_MS };
    }
    if (candidates.length === 0) {
      return { kind: "unresolved", retryAt: performance.now() + UNRESOLVED_RETRY_MS };
    }
    const subject = ruleSubjectsOf(session, "udp", target);
    const allowed = candidates.filter((address) => services.rules.evaluate(subject(address)).allow);
    if (allowed.length === 0) return { kind: "denied" };
    const pool = this.#poolFor(target);
    if (pool === undefined) return { kind: "ready", peer: resolvedPeer(allowed[0]!, target.port) };
    let pick = this.#egress.get(pool);
    if (pick === undefined) {
      pick = pool.selection(
        egressKeyOf(target, { user: session.user, client: session.client.address }),
      );
      this.#egress.set(pool, pick);
    }
    for (const address of allowed) {
      const family = address.family;
      const source = pick(family);
      if (source === null) continue;
      // The family's socket, once open, keeps the source it was bound to.
      if (this.#outbound[family] === undefined) this.#sources[family] ??= source;
      return { kind: "ready", peer: resolvedPeer(address, target.port) };
    }
    return { kind: "no_egress" };
  }

  /** The egress pool of a destination: the user's, else its route's when that has no chain. */
  #poolFor(target: SocksTarget): EgressPool | undefined {
    const services = this.#services;
    const user = this.#session.user;
    const route = services.route(target);
    return egressPoolFor(route.chained ? undefined : route.egress, {
      name: user,
      pools: services.userEgress,
    });
  }
}
