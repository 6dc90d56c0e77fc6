/**
 * BIND (RFC 1928 §4) across address families (RFC 3089 §2): listen in the family of the
 * expected peer -> first reply -> accept only that peer, within `bind.wait` -> second reply
 * -> core relay.
 *
 * - The first reply's BND.ADDR is `bind.external_address` of the peer's family when set (the
 *   listener then binds that family's wildcard), else the address the gateway's routing uses as
 *   its source towards the peer (towards the default route when DST.ADDR is all zeros; see
 *   `_bind_address.ts`).
 * - DST.ADDR names the expected peer (a name is resolved here); when it is not all zeros only
 *   a connection from one of its addresses is accepted, others are closed at once and the
 *   wait goes on. DST.PORT is not checked: clients rarely know the peer's source port.
 * - The wait ends with a failure reply when it times out (REP 4, as a connect timeout) and
 *   silently when the client leaves.
 *
 * @module
 */

import {
  formatIp,
  type IpAddress,
  type IpEndpoint,
  isUnspecified,
  peerEndpoint,
  sameIp,
  unmapIpv4,
  unspecified,
} from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { closeQuietly, writeAll } from "../../net/io.ts";
import {
  lookupCandidates,
  recordBaseOf,
  rejectForError,
  rejectRequest,
  relayCounted,
  replySucceeded,
  ruleSubjectsOf,
  withExtraDescriptors,
} from "./_request_context.ts";
import { encodeReply } from "../../socks5/codec.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply, type ReplyCode } from "../../socks5/types.ts";
import { chooseBindAddress, hostInterfaces, hostRoutes } from "./_bind_address.ts";
import { WatchedConn } from "./_bind_watch.ts";
import type { RuleSubject } from "../access/rules.ts";
import { failAndClose } from "../replies.ts";
import type { Handshaken, SessionServices } from "../session_types.ts";

/** The expected peer: its family and the addresses it may connect from (`null`: any). */
interface ExpectedPeer {
  readonly family: 4 | 6;
  readonly addresses: readonly IpAddress[] | null;
}

/** Handles a BIND request after the handshake; never throws. */
export async function handleBind(session: Handshaken, services: SessionServices): Promise<void> {
  // The listener, beyond the connection's two descriptors (the peer takes the outbound's place).
  await withExtraDescriptors(session, services, "bind", 1, () => bind(session, services));
}

async function bind(session: Handshaken, services: SessionServices): Promise<void> {
  const { conn } = session;
  const subject = ruleSubjectsOf(session, "bind");
  const base = recordBaseOf(session, "bind");
  const reject = (reply: ReplyCode, reason: string) =>
    rejectRequest(session, services, base, reply, reason);

  let expected: ExpectedPeer;
  try {
    expected = await expectedPeer(session, services, subject);
  } catch (error) {
    await rejectForError(session, services, base, error);
    return;
  }

  const external = expected.family === 4
    ? services.config.bind.externalAddress.v4
    : services.config.bind.externalAddress.v6;
  const listenAddress = external !== undefined
    ? unspecified(expected.family)
    : chooseBindAddress(expected.family, {
      peer: expected.addresses?.[0] ?? null,
      reached: session.local.address,
      interfaces: hostInterfaces(),
      routes: hostRoutes(expected.family),
    });
  if (listenAddress === null) {
    await reject(
      Reply.NetworkUnreachable,
      `Cannot bind: the gateway has no IPv${expected.family} address`,
    );
    return;
  }
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: formatIp(listenAddress), port: 0, transport: "tcp" });
  } catch (error) {
    await rejectForError(session, services, base, error, "Cannot bind: ");
    return;
  }
  const bound: IpEndpoint = {
    address: external ?? listenAddress,
    port: listener.addr.port,
  };

  const watched = new WatchedConn(conn);
  const waited = await (async () => {
    try {
      await writeAll(conn, encodeReply({ reply: Reply.Succeeded, bound }));
    } catch (error) {
      listener.close();
      return { kind: "gone" as const, reason: `client gone: ${errorText(error)}` };
    }
    return await acceptExpected(listener, watched, {
      expected,
      waitMs: services.config.bind.waitMs,
      shutdown: services.shutdown,
      permit: (peer) => services.rules.evaluate(subject(peer)).allow,
    });
  })();

  if (waited.kind !== "accepted") {
    if (waited.kind === "timeout" || waited.kind === "aborted") {
      await failAndClose(
        conn,
        waited.kind === "timeout" ? Reply.HostUnreachable : Reply.GeneralFailure,
      );
    } else {
      closeQuietly(conn);
    }
    // The watching read ends with the close; wait for it so no operation outlives the session.
    await watched.gone;
    services.record({
      ...base,
      used: bound,
      outcome: "rejected",
      ...(waited.kind === "gone" ? {} : {
        reply: waited.kind === "timeout" ? Reply.HostUnreachable : Reply.GeneralFailure,
      }),
      reason: waited.reason,
    });
    return;
  }

  const { peerConn, peer } = waited;
  const answered = await replySucceeded(session, services, peer, {
    record: { ...base, used: peer },
    release: () => peerConn.close(),
    closeClient: async () => {
      watched.close();
      await watched.gone;
    },
  });
  if (!answered) return;
  services.noteSession?.(conn, { subject: subject(peer.address) });

  const result = await relayCounted(session, services, {
    command: "bind",
    client: watched,
    server: peerConn,
    peer,
  });
  await watched.gone;
  services.record({
    ...base,
    used: peer,
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    reason: [
      result.end === "error" ? `error: ${errorText(result.error)}` : result.end,
      ...(waited.refused > 0 ? [`refused ${waited.refused} other peers`] : []),
    ].join("; "),
  });
}

/** Resolves DST.ADDR into the expected peer, applying the rules to each address. */
async function expectedPeer(
  session: Handshaken,
  services: SessionServices,
  subject: (address?: IpAddress) => RuleSubject,
): Promise<ExpectedPeer> {
  const target = session.request.target;
  if (target.address.family !== "name") {
    const address = unmapIpv4(target.address);
    if (isUnspecified(address)) {
      if (!services.rules.evaluate(subject()).allow) {
        throw new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot bind: denied by rules");
      }
      return { family: address.family, addresses: null };
    }
  }
  const { addresses: candidates } = await lookupCandidates(services, target, services.shutdown);
  const permitted = candidates.filter((address) => services.rules.evaluate(subject(address)).allow);
  const first = permitted[0];
  if (first === undefined) {
    throw new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot bind: denied by rules");
  }
  return { family: first.family, addresses: permitted };
}

type WaitOutcome =
  | {
    readonly kind: "accepted";
    readonly peerConn: Deno.TcpConn;
    readonly peer: IpEndpoint;
    readonly refused: number;
  }
  | { readonly kind: "timeout" | "aborted" | "gone"; readonly reason: string };

/** Accepts the first connection from the expected peer; closes `listener` in every case. */
async function acceptExpected(
  listener: Deno.TcpListener,
  watched: WatchedConn,
  options: {
    readonly expected: ExpectedPeer;
    readonly waitMs: number;
    readonly shutdown: AbortSignal;
    readonly permit: (peer: IpAddress) => boolean;
  },
): Promise<WaitOutcome> {
  let stopped: WaitOutcome | undefined;
  const stop = (outcome: WaitOutcome) => {
    stopped ??= outcome;
    closeQuietly(listener);
  };
  const timer = setTimeout(
    () => stop({ kind: "timeout", reason: `Cannot bind: no peer within ${options.waitMs} ms` }),
    options.waitMs,
  );
  const onShutdown = () => stop({ kind: "aborted", reason: "Cannot bind: gateway stopping" });
  options.shutdown.addEventListener("abort", onShutdown, { once: true });
  if (options.shutdown.aborted) onShutdown();
  let waiting = true;
  watched.gone.then((gone) => {
    if (!gone || !waiting) return;
    // A client that sends more than the watch holds is refused: past it, its leaving would
    // go unnoticed until bind.wait ran out.
    if (watched.overflowed) {
      stop({ kind: "aborted", reason: "Cannot bind: the client sent too much during the wait" });
    } else stop({ kind: "gone", reason: "client left during the wait" });
  });
  const allowed = options.expected.addresses;
  let refused = 0;
  try {
    while (true) {
      let candidate: Deno.TcpConn;
      try {
        candidate = await listener.accept();
      } catch (error) {
        return stopped ?? { kind: "aborted", reason: `Cannot bind: ${errorText(error)}` };
      }
      const peer = peerEndpoint(candidate);
      if (peer === null) {
        candidate.close();
        continue;
      }
      const expected = allowed === null
        ? options.permit(peer.address)
        : allowed.some((address) => sameIp(address, peer.address));
      if (!expected) {
        candidate.close();
        refused++;
        continue;
      }
      if (stopped !== undefined) {
        candidate.close();
        return stopped;
      }
      return { kind: "accepted", peerConn: candidate, peer, refused };
    }
  } finally {
    waiting = false;
    clearTimeout(timer);
    options.shutdown.removeEventListener("abort", onShutdown);
    closeQuietly(listener);
  }
}
