/**
 * What CONNECT, BIND, UDP ASSOCIATE and RESOLVE share about a request: its rule subject, the
 * base of its connection record, and the replies that end it early (a failure, or a success the
 * client is no longer there to read).
 *
 * @module
 */

import type { IpAddress, IpEndpoint } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { closeQuietly, writeAll } from "../../net/io.ts";
import {
  candidateAddresses,
  type Candidates,
  literalAddress,
  normalizeName,
} from "../../resolver/mod.ts";
import { encodeReply } from "../../socks5/codec.ts";
import { Reply, type ReplyCode, type SocksTarget } from "../../socks5/types.ts";
import type { RuleCommand } from "../config/types.ts";
import type { ConnectionRecord } from "../observe/connection_log.ts";
import { familyPair } from "../observe/metrics.ts";
import { relay, type RelayConn, type RelayResult } from "../relay/relay.ts";
import { failAndClose } from "../replies.ts";
import { replyForError } from "../reply_codes.ts";
import type { RuleSubject, RuleVerdict } from "../access/rules.ts";
import type { Handshaken, SessionServices } from "../session_types.ts";

/** The fields every record of a request carries. */
export type RecordBase = Pick<
  ConnectionRecord,
  "client" | "command" | "target" | "startedAt" | "handshakeMs" | "user"
>;

/** The base of the connection record of `session`'s request. */
export function recordBaseOf(session: Handshaken, command: RuleCommand): RecordBase {
  return {
    client: session.client,
    command,
    target: session.request.target,
    startedAt: session.startedAt,
    ...(session.handshakeMs !== undefined ? { handshakeMs: session.handshakeMs } : {}),
    ...(session.user !== undefined ? { user: session.user } : {}),
  };
}

/** The normalised name of a target sent as a name (not a literal), else `undefined`. */
export function targetName(target: SocksTarget): string | undefined {
  if (target.address.family !== "name" || literalAddress(target.address.name)) return undefined;
  return normalizeName(target.address.name) ?? undefined;
}

/**
 * Returns the rule subject builder for `target` on behalf of `session`: call it with the
 * address to be used (literal or resolved), or without one when only the name is known.
 */
export function ruleSubjectsOf(
  session: Pick<Handshaken, "client" | "clientIsLocal" | "user" | "request">,
  command: RuleCommand,
  target: SocksTarget = session.request.target,
): (address?: IpAddress) => RuleSubject {
  const name = targetName(target);
  return (address) => ({
    client: session.client.address,
    clientIsLocal: session.clientIsLocal,
    command,
    port: target.port,
    ...(session.user !== undefined ? { user: session.user } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(address !== undefined ? { address } : {}),
  });
}

/**
 * The addresses `target` stands for, in dialing order (`candidateAddresses` with the gateway's
 * resolver and family preference), within the connect timeout or until `signal` aborts.
 */
export function lookupCandidates(
  services: SessionServices,
  target: SocksTarget,
  signal: AbortSignal,
): Promise<Candidates> {
  return candidateAddresses(target, {
    resolver: services.resolver,
    prefer: services.config.resolver.prefer,
    signal: AbortSignal.any([AbortSignal.timeout(services.config.timeouts.connectMs), signal]),
  });
}

/**
 * Why a verdict denies, for the record: the rule that matched, no rule, or (rule index -1
 * without configured rules) the safe defaults, which deny only host-local destinations.
 */
export function denialText(verdict: RuleVerdict, rulesConfigured: boolean): string {
  if (verdict.rule >= 0) return `denied by rules[${verdict.rule}]`;
  return rulesConfigured
    ? "denied by rules: no rule allows it"
    : "denied by the safe defaults: destination is host-local";
}

/**
 * A dial's `permit` that judges every address tried by the rules, and what it judged: the last
 * denying verdict (so that a refusal says which rule, or default, refused) and the subject the
 * dial was last allowed under (a reload with `recheck` judges the relay by it).
 */
export interface RulePermit {
  /** Evaluates the rules on `subject(address)`; true when they allow it. */
  readonly permit: (address?: IpAddress) => boolean;
  /** The last denying verdict, if any. */
  denial?: RuleVerdict;
  /** The last subject the rules allowed, if any. */
  allowed?: RuleSubject;
}

/** A {@linkcode RulePermit} that judges `subject(address)` by `services.rules`. */
export function rulePermit(
  services: Pick<SessionServices, "rules">,
  subject: (address?: IpAddress) => RuleSubject,
): RulePermit {
  const judged: RulePermit = {
    permit: (address) => {
      const asked = subject(address);
      const verdict = services.rules.evaluate(asked);
      if (!verdict.allow) judged.denial = verdict;
      else judged.allowed = asked;
      return verdict.allow;
    },
  };
  return judged;
}

/** Sends a failure reply to `session`'s request, closes shortly after, and records why. */
export async function rejectRequest(
  session: Handshaken,
  services: SessionServices,
  base: RecordBase & Pick<ConnectionRecord, "connectMs">,
  reply: ReplyCode,
  reason: string,
): Promise<void> {
  await failAndClose(session.conn, reply);
  services.record({ ...base, outcome: "rejected", reply, reason });
}

/**
 * Refuses `session`'s request because of `error`: the REP that the error maps to
 * (`replyForError`), the reason `context` followed by the error's text.
 */
export async function rejectForError(
  session: Handshaken,
  services: SessionServices,
  base: RecordBase & Pick<ConnectionRecord, "connectMs">,
  error: unknown,
  context = "",
): Promise<void> {
  await rejectRequest(session, services, base, replyForError(error), context + errorText(error));
}

/** What {@linkcode replySucceeded} does when the client is gone before its success reply. */
export interface ClientGone {
  /** The record's fields beyond `outcome`, `reply` and `reason`. */
  readonly record: Omit<ConnectionRecord, "outcome" | "reply" | "reason">;
  /** What the client left before, for the reason. @default "relay" */
  readonly before?: string;
  /** Leads the reason (`"expected by translator: "`). @default "" */
  readonly context?: string;
  /** Closes what the request opened for the client (the outbound connection, a socket). */
  readonly release?: () => void;
  /** Closes the client connection. @default closes `session.conn`, ignoring errors */
  readonly closeClient?: () => void | Promise<void>;
}

/**
 * Sends the success reply to `session`'s request, with `bound` as BND.ADDR and BND.PORT, and
 * returns `true`. When the client is gone, closes what the request opened and the client
 * connection, records why (REP 0, outcome `rejected`) and returns `false`.
 */
export async function replySucceeded(
  session: Handshaken,
  services: SessionServices,
  bound: SocksTarget,
  gone: ClientGone,
): Promise<boolean> {
  try {
    await writeAll(session.conn, encodeReply({ reply: Reply.Succeeded, bound }));
    return true;
  } catch (error) {
    gone.release?.();
    if (gone.closeClient !== undefined) {
      await gone.closeClient();
    } else {
      closeQuietly(session.conn);
    }
    services.record({
      ...gone.record,
      outcome: "rejected",
      reply: Reply.Succeeded,
      reason: `${gone.context ?? ""}client gone before ${gone.before ?? "relay"}: ${
        errorText(error)
      }`,
    });
    return false;
  }
}

/** What {@linkcode relayCounted} relays. */
export interface CountedRelay {
  /** The command, for the active-relay gauges. */
  readonly command: "connect" | "bind";
  /** The client side. */
  readonly client: RelayConn;
  /** The destination side. */
  readonly server: RelayConn;
  /** The destination's endpoint, for the family pair. */
  readonly peer: IpEndpoint;
}

/**
 * Relays a CONNECT's or BIND's two connections with the gateway's idle timeout and shutdown, the
 * client's pipelined bytes first, counted in the active-relay gauges (by command, and by family
 * pair) while it runs.
 */
export async function relayCounted(
  session: Handshaken,
  services: SessionServices,
  relayed: CountedRelay,
): Promise<RelayResult> {
  const { command } = relayed;
  services.metrics?.activeRelays.inc([command]);
  const families = familyPair(session.client, relayed.peer);
  services.metrics?.activeFamilies.inc([command, families]);
  try {
    return await relay(relayed.client, relayed.server, {
      idleMs: services.config.timeouts.idleMs,
      signal: services.shutdown,
      clientPrelude: session.reader.takeBuffered(),
      ...(session.throttle && { throttle: session.throttle }),
    });
  } finally {
    services.metrics?.activeRelays.dec([command]);
    services.metrics?.activeFamilies.dec([command, families]);
  }
}

/**
 * Runs `handle` with `count` descriptors beyond the connection's two taken from the budget the
 * open files limit leaves, or refuses the request with REP 1 when they do not fit.
 */
export async function withExtraDescriptors(
  session: Handshaken,
  services: SessionServices,
  command: RuleCommand,
  count: number,
  handle: () => Promise<void>,
): Promise<void> {
  const release = services.reserveDescriptors(count);
  if (release === null) {
    await rejectRequest(
      session,
      services,
      recordBaseOf(session, command),
      Reply.GeneralFailure,
      `Cannot serve ${command}: the open files limit is reached`,
    );
    return;
  }
  try {
    await handle();
  } finally {
    release();
  }
}
