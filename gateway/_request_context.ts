/**
 * What CONNECT, BIND and UDP ASSOCIATE share about a request: its rule subject, the base of its
 * connection record, and the addresses its destination stands for.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";
import { literalAddress, normalizeName, orderAddresses, type Resolver } from "../resolver/mod.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply, type ReplyCode, type SocksTarget } from "../socks5/types.ts";
import type { FamilyPreference, RuleCommand } from "./config/types.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { RuleSubject } from "./rules.ts";
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

/**
 * Resolves a target (a literal, an IP literal sent as a name, or a name) into addresses ordered
 * by the family preference.
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
  const literal = target.address.family === "name"
    ? literalAddress(target.address.name)
    : target.address;
  if (literal) {
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
  const name = (target.address as { name: string }).name;
  const resolved = await resolver.resolve(name, { signal });
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
