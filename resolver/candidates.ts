/**
 * The addresses a SOCKS destination stands for, in dialing order: a literal (or an IP literal
 * sent as a name) as it is, a name through the resolver, both filtered and ordered by the
 * family preference. Failures are `SocksReplyError`s with the REP a client gets (3: a literal
 * of an excluded family, 4: no address in the allowed families).
 *
 * @module
 */

import { type IpAddress, sameIp } from "../net/address.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply, type SocksTarget } from "../socks5/types.ts";
import { orderAddresses } from "./happy_eyeballs.ts";
import { literalAddress } from "./name.ts";
import type { FamilyPreference } from "./options.ts";
import type { ResolvedName, Resolver } from "./resolver.ts";

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

/** Options of {@linkcode candidateAddresses} and {@linkcode stagedCandidateAddresses}. */
export interface CandidateAddressesOptions {
  /** Resolves names. */
  readonly resolver: Resolver;
  /** Which families are used, in which order. */
  readonly prefer: FamilyPreference;
  /** Aborts the lookup. */
  readonly signal: AbortSignal;
}

/**
 * Resolves a target (a literal, an IP literal sent as a name, or a name) into addresses ordered
 * by the family preference, waiting for the complete answer of a name.
 *
 * @throws {SocksReplyError} REP 3 for a literal of a family `prefer` excludes, REP 4 for a name
 *   with no address in the allowed families (and the resolver's REP 4 errors).
 */
export function candidateAddresses(
  target: SocksTarget,
  { resolver, prefer, signal }: CandidateAddressesOptions,
): Promise<Candidates> {
  return literalOr(
    target,
    prefer,
    async (name) => orderedCandidates(name, await resolver.resolve(name, { signal }), prefer),
  );
}

/**
 * Like {@linkcode candidateAddresses}, but for a name answered by DNS it returns as soon as
 * the resolver's first stage has an address (RFC 8305 §3: AAAA at once, A after the resolution
 * delay), with the rest of the answer still to come in `later`.
 *
 * @throws {SocksReplyError} as {@linkcode candidateAddresses} does.
 */
export function stagedCandidateAddresses(
  target: SocksTarget,
  { resolver, prefer, signal }: CandidateAddressesOptions,
): Promise<StagedCandidates> {
  return literalOr(target, prefer, async (name): Promise<StagedCandidates> => {
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
  });
}

/**
 * The candidates of a literal target (an address, or an IP literal sent as a name), else what
 * `resolveName` makes of the name.
 */
async function literalOr<T extends Candidates>(
  target: SocksTarget,
  prefer: FamilyPreference,
  resolveName: (name: string) => Promise<T>,
): Promise<Candidates | T> {
  const literal = target.address.family === "name"
    ? literalAddress(target.address.name)
    : target.address;
  if (!literal) return await resolveName((target.address as { name: string }).name);
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
