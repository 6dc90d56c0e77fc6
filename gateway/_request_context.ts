/**
 * What CONNECT, BIND and UDP ASSOCIATE share about a request: its rule subject, the base of its
 * connection record, and the addresses its destination stands for.
 *
 * @module
 */

import { type IpAddress, sameIp } from "../net/address.ts";
import {
  literalAddress,
  normalizeName,
  orderAddresses,
  type ResolvedName,
  type Resolver,
} from "../resolver/mod.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply, type ReplyCode, type SocksTarget } from "../socks5/types.ts";
import type { FamilyPreference, RuleCommand } from "./config/types.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { RuleSubject, RuleVerdict } from "./rules.ts";
import { failAndClose, type Handshaken, type SessionServices } from "./session.ts";

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
  return target.address.family === "name"
    ? normalizeName(target.address.name) ?? undefined
    : undefined;
}

/**
 * Returns the rule subject builder for `target` on behalf of `session`: call it with the
 * address to be used (literal or resolved), or without one when only the name is known.
 */
export function ruleSubjectsOf(
  session: Handshaken,
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

/** The addresses a destination stands for, in dialing order, and where they came from. */
export interface Candidates {
  /** Addresses in the order `prefer` gives. */
  readonly addresses: IpAddress[];
  /** `literal`, or the resolver's source (`static`, `hosts`, `cache`, `dns`). */
  readonly source: string;
}

/** {@linkcode Candidates} to start connecting with, and the addresses a late answer adds. */
export interface StagedCandidates extends Candidates {
  /**
   * Addresses of the allowed families that the complete answer has beyond `addresses` (RFC
   * 8305 §3), unordered; `[]` when there are none or the rest of the lookup failed. Never
   * rejects. Absent when the answer was complete at once.
   */
  readonly later?: Promise<IpAddress[]>;
}

/**
 * Resolves a target (a literal, an IP literal sent as a name, or a name) into addresses ordered
 * by the family preference, waiting for the complete answer of a name.
 *
 * @throws {SocksReplyError} REP 3 for a literal of a family `prefer` excludes, REP 4 for a name
 *   with no address in the allowed families (and the resolver's REP 4 errors).
 */
export async function candidateAddresses(
  target: SocksTarget,
  resolver: Resolver,
  prefer: FamilyPreference,
  signal: AbortSignal,
): Promise<Candidates> {
  const literal = literalCandidates(target, prefer);
  if (literal) return literal;
  const name = (target.address as { name: string }).name;
  return orderedCandidates(name, await resolver.resolve(name, { signal }), prefer);
}

/**
 * Like {@linkcode candidateAddresses}, but for a name answered by DNS it returns as soon as
 * the resolver's first stage has an address (RFC 8305 §3: AAAA at once, A after the resolution
 * delay), with the rest of the answer still to come in `later`.
 *
 * @throws {SocksReplyError} as {@linkcode candidateAddresses} does.
 */
export async function stagedCandidateAddresses(
  target: SocksTarget,
  resolver: Resolver,
  prefer: FamilyPreference,
  signal: AbortSignal,
): Promise<StagedCandidates> {
  const literal = literalCandidates(target, prefer);
  if (literal) return literal;
  const name = (target.address as { name: string }).name;
  const { first, complete } = resolver.resolveStaged(name, { signal });
  const resolved = await first;
  if (resolved.source !== "dns") return orderedCandidates(name, resolved, prefer);
  const addresses = orderAddresses(resolved, prefer);
  // The early answer may hold only a family `prefer` excludes; then the complete one decides.
  if (addresses.length === 0) return orderedCandidates(name, await complete, prefer);
  const later = complete.then(
    (all) => orderAddresses(all, prefer).filter((a) => !addresses.some((b) => sameIp(a, b))),
    () => [],
  );
  return { addresses, source: resolved.source, later };
}

function literalCandidates(target: SocksTarget, prefer: FamilyPreference): Candidates | null {
  const literal = target.address.family === "name"
    ? literalAddress(target.address.name)
    : target.address;
  if (!literal) return null;
  const addresses = orderAddresses(
    literal.family === 4 ? { v4: [literal], v6: [] } : { v4: [], v6: [literal] },
    prefer,
  );
  if (addresses.length === 0) {
    throw new SocksReplyError(
      Reply.NetworkUnreachable,
      `Cannot reach IPv${literal.family} ${target.address.family === "name" ? "literal " : ""}` +
        `destinations: resolver.prefer is ${prefer}`,
    );
  }
  return { addresses, source: "literal" };
}

function orderedCandidates(
  name: string,
  resolved: ResolvedName,
  prefer: FamilyPreference,
): Candidates {
  const addresses = orderAddresses(resolved, prefer);
  if (addresses.length === 0) {
    throw new SocksReplyError(
      Reply.HostUnreachable,
      `Cannot resolve "${name}": no address in the families allowed (${prefer})`,
    );
  }
  return { addresses, source: resolved.source };
}

/** The message of an error, for records and logs. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
