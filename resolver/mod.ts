/**
 * All name knowledge of the gateway: IP literals sent as names, static hosts and the hosts
 * file, a bounded TTL cache, DNS (A and AAAA in parallel, with per-query timeouts and
 * configured servers, answered in stages per RFC 8305 §3), and Happy Eyeballs (RFC 8305)
 * address ordering and connection racing over a list that may grow while attempts run.
 *
 * A name that does not resolve is a {@linkcode NameNotResolvedError}, a `SocksReplyError`
 * with REP 4 (host unreachable).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderAddresses, Resolver } from "./mod.ts";
 *
 * const resolver = new Resolver({
 *   prefer: "happy-eyeballs",
 *   hosts: {},
 *   hostsFile: "",
 *   servers: [],
 *   timeoutMs: 5000,
 *   cacheSize: 100,
 *   maxTtlSeconds: 300,
 *   negativeTtlSeconds: 30,
 * });
 * const answer = await resolver.resolve("[2001:db8::1]");
 * assert.equal(answer.source, "literal");
 * assert.equal(orderAddresses(answer, "happy-eyeballs").length, 1);
 * ```
 *
 * @module
 */

export { type CachedAnswer, NameCache, type NameCacheOptions } from "./cache.ts";
export {
  candidateAddresses,
  type CandidateAddressesOptions,
  type Candidates,
  stagedCandidateAddresses,
  type StagedCandidates,
} from "./candidates.ts";
export {
  AllAttemptsFailedError,
  connectHappyEyeballs,
  type ConnectHappyEyeballsOptions,
  type HappyEyeballsResult,
  orderAddresses,
} from "./happy_eyeballs.ts";
export { parseHostsFile } from "./hosts_file.ts";
export { isLocalhostName, literalAddress, normalizeName } from "./name.ts";
export type { FamilyPreference, ResolverConfig } from "./options.ts";
export {
  type DnsQuery,
  type DnsQueryOptions,
  type DnsRecord,
  type DnsRecordType,
  NameNotResolvedError,
  type PtrQuery,
  type ResolvedName,
  Resolver,
  type ResolverOptions,
  type ResolverStats,
  type ResolveSource,
  type ReverseName,
  reverseName,
  type StagedResolution,
} from "./resolver.ts";
