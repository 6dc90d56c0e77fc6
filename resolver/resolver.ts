/**
 * The gateway's resolver: IP literals, static names, the hosts file, a cache, then DNS.
 *
 * @module
 */

import type { FamilyPreference, ResolverConfig } from "./options.ts";
import { formatIp, type IpAddress, parseIp, sameIp, unmapIpv4 } from "../net/address.ts";
import { abortable } from "../net/io.ts";
import { errorText } from "../net/error_text.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply } from "../socks5/types.ts";
import { NameCache } from "./cache.ts";
import { parseHostsFile } from "./hosts_file.ts";
import { literalAddress, normalizeName } from "./name.ts";

/** Where an answer came from. */
export type ResolveSource = "literal" | "static" | "hosts" | "dns" | "cache";

/** The addresses of a name, by family. */
export interface ResolvedName {
  /** The normalized name; for a literal, the text as given. */
  readonly name: string;
  /** IPv4 addresses, in answer order. */
  readonly v4: IpAddress[];
  /** IPv6 addresses, in answer order. */
  readonly v6: IpAddress[];
  /** Where the answer came from. */
  readonly source: ResolveSource;
}

/** A DNS record type the resolver asks for. */
export type DnsRecordType = "A" | "AAAA";

/** A DNS answer record: the address text, or the address text with its TTL in seconds. */
export type DnsRecord = string | { readonly data: string; readonly ttl: number };

/** Options passed to a {@linkcode DnsQuery}. */
export interface DnsQueryOptions {
  /** The server to ask; absent means the system configuration. */
  readonly nameServer?: { readonly ipAddr: string; readonly port: number };
  /** Aborts the query (timeout or caller gone). */
  readonly signal: AbortSignal;
}

/**
 * One DNS query, shaped like `Deno.resolveDns`. "No such record" is an empty array or a
 * `Deno.errors.NotFound` rejection; any other rejection is a failure worth trying the next
 * server for.
 */
export type DnsQuery = (
  name: string,
  type: DnsRecordType,
  options: DnsQueryOptions,
) => Promise<readonly DnsRecord[]>;

/**
 * One DNS PTR query, shaped like `Deno.resolveDns(name, "PTR")`: `name` is the `in-addr.arpa`
 * or `ip6.arpa` name. "No such record" is an empty array or a `Deno.errors.NotFound` rejection.
 */
export type PtrQuery = (name: string, options: DnsQueryOptions) => Promise<readonly string[]>;

/** A reverse lookup's answer, from {@linkcode Resolver.reverse}. */
export interface ReverseName {
  /** The name, normalized (lower case, no trailing dot). */
  readonly name: string;
  /** Where it came from: `static`, `hosts` or `dns`. */
  readonly source: Exclude<ResolveSource, "literal" | "cache">;
}

/** Test hooks and tuning for {@linkcode Resolver}. */
export interface ResolverOptions {
  /** Replaces `Deno.resolveDns`. @default Deno.resolveDns */
  readonly query?: DnsQuery;
  /** Replaces `Deno.resolveDns` for PTR records. @default Deno.resolveDns */
  readonly queryPtr?: PtrQuery;
  /** Clock in milliseconds, for the cache and the hosts file re-check. @default Date.now */
  readonly now?: () => number;
  /** How often, at most, the hosts file's mtime is checked for changes. @default 5000 */
  readonly hostsCheckIntervalMs?: number;
  /**
   * How long an answer of the less preferred family waits for the preferred one before
   * {@linkcode StagedResolution.first} settles with it (RFC 8305 §3 "Resolution Delay").
   * @default 50
   */
  readonly resolutionDelayMs?: number;
}

/**
 * A name's resolution in two stages (RFC 8305 §3), from {@linkcode Resolver.resolveStaged}.
 * Both reject alike when the name does not resolve; an answer that needs no DNS (a literal,
 * static hosts, the hosts file, the cache) is the same in both, at once.
 */
export interface StagedResolution {
  /**
   * The first usable answer: as soon as the preferred family (AAAA, or A for `ipv4`) answers,
   * or the other family's answer once it has waited the resolution delay, or else when both
   * queries are done. Start connecting with it.
   */
  readonly first: Promise<ResolvedName>;
  /**
   * The complete answer, once every query has answered, failed or timed out: what
   * {@linkcode Resolver.resolve} gives, and what is cached. It holds every address of `first`.
   */
  readonly complete: Promise<ResolvedName>;
}

/** Counters for metrics; plain numbers that only grow. */
export interface ResolverStats {
  /** Names answered from the cache (positive or negative). */
  hits: number;
  /** Names that needed DNS (joining a lookup already in flight included). */
  misses: number;
  /** DNS queries sent (one per record type per server tried). */
  queries: number;
}

/**
 * A name that does not resolve: REP 4 (host unreachable). Thrown for names with no A or AAAA
 * record, DNS timeouts and failures, and names that are not valid host names.
 */
export class NameNotResolvedError extends SocksReplyError {
  /** The name as asked for. */
  readonly hostname: string;
  /** True when the lookup gave up because DNS did not answer within the timeout. */
  readonly timedOut: boolean;

  /** Creates the error; the message is `Cannot resolve "<hostname>": <reason>`. */
  constructor(
    hostname: string,
    reason: string,
    options?: ErrorOptions & { readonly timedOut?: boolean },
  ) {
    super(Reply.HostUnreachable, `Cannot resolve ${JSON.stringify(hostname)}: ${reason}`, options);
    this.name = "NameNotResolvedError";
    this.hostname = hostname;
    this.timedOut = options?.timedOut ?? false;
  }
}

interface NameServer {
  readonly ipAddr: string;
  readonly port: number;
}

type QueryOutcome =
  | { readonly kind: "records"; readonly addresses: IpAddress[]; readonly ttl: number | undefined }
  | { readonly kind: "none" }
  | {
    readonly kind: "error";
    readonly error: unknown;
    /** Our timeout fired, or the system resolver gave up on its own. */
    readonly timedOut: boolean;
    /** True only when our own `timeoutMs` fired (else the figure is not ours to quote). */
    readonly ourTimeout?: boolean;
    /** How long the failed query took. */
    readonly elapsedMs?: number;
  };

interface Lookup {
  readonly first: Promise<ResolvedName>;
  readonly complete: Promise<ResolvedName>;
}

interface InflightLookup extends Lookup {
  readonly controller: AbortController;
  waiters: number;
}

interface HostsSnapshot {
  readonly map: Map<string, IpAddress[]>;
  readonly stamp: string | null;
  checkedAt: number;
}

const denoQuery: DnsQuery = (name, type, options) =>
  Deno.resolveDns(
    name,
    type,
    options.nameServer
      ? { nameServer: { ...options.nameServer }, signal: options.signal }
      : { signal: options.signal },
  );

const denoPtrQuery: PtrQuery = (name, options) =>
  Deno.resolveDns(
    name,
    "PTR",
    options.nameServer
      ? { nameServer: { ...options.nameServer }, signal: options.signal }
      : { signal: options.signal },
  );

/**
 * Resolves names the way the gateway needs them, in this order: an IP literal sent as a name
 * is the address; then the config's static `hosts`; then the hosts file (read on first use,
 * re-read when its mtime changes); then the cache; then DNS, with A and AAAA asked in
 * parallel (`ipv4-only` skips AAAA, `ipv6-only` skips A), each query bounded by `timeoutMs`
 * and tried against the configured `servers` in order until one answers.
 * {@linkcode Resolver.resolveStaged} hands out the first family's answer early (RFC 8305 §3),
 * so that a server that never answers AAAA does not hold up connecting over IPv4.
 *
 * A source answers only if it has an address the family preference allows; otherwise the
 * next source is asked. Concurrent lookups of one name share one set of queries. Answers
 * "no such record" are cached for `negativeTtlSeconds`; timeouts and server failures are not.
 *
 * `Deno.resolveDns` (Deno 2.9) reports no TTLs, so DNS answers live `maxTtlSeconds` unless
 * the `query` function returns records with a `ttl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Resolver } from "./resolver.ts";
 *
 * const resolver = new Resolver({
 *   prefer: "happy-eyeballs",
 *   hosts: { "intranet.example": ["192.0.2.20", "2001:db8::20"] },
 *   hostsFile: "",
 *   servers: [],
 *   timeoutMs: 5000,
 *   cacheSize: 100,
 *   maxTtlSeconds: 300,
 *   negativeTtlSeconds: 30,
 * });
 * const answer = await resolver.resolve("Intranet.Example.");
 * assert.equal(answer.source, "static");
 * assert.equal(answer.v4.length + answer.v6.length, 2);
 * ```
 */
export class Resolver {
  /** Counters for metrics. */
  readonly stats: ResolverStats = { hits: 0, misses: 0, queries: 0 };

  readonly #prefer: FamilyPreference;
  readonly #static: Map<string, IpAddress[]>;
  readonly #hostsFile: string;
  readonly #servers: readonly (NameServer | undefined)[];
  readonly #timeoutMs: number;
  readonly #negativeTtlSeconds: number;
  readonly #cache: NameCache;
  readonly #query: DnsQuery;
  readonly #queryPtr: PtrQuery;
  readonly #now: () => number;
  readonly #hostsCheckIntervalMs: number;
  readonly #resolutionDelayMs: number;
  readonly #inflight = new Map<string, InflightLookup>();
  #hosts: HostsSnapshot | undefined;
  #hostsLoading: Promise<Map<string, IpAddress[]>> | undefined;

  /** Names held in the cache (answers and negative entries, expired ones not yet evicted). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Lookups in flight (one per name, shared by everyone waiting for it). */
  get inflightLookups(): number {
    return this.#inflight.size;
  }

  /**
   * Creates a resolver. Nothing is read or sent until the first {@linkcode Resolver.resolve}.
   *
   * @throws {RangeError} when a static host address or a DNS server is not an IP literal.
   */
  constructor(config: ResolverConfig, options: ResolverOptions = {}) {
    this.#prefer = config.prefer;
    this.#static = new Map();
    for (const [rawName, texts] of Object.entries(config.hosts)) {
      const name = normalizeName(rawName);
      if (name === null) {
        throw new RangeError(
          `Cannot create resolver: hosts name ${JSON.stringify(rawName)} is invalid`,
        );
      }
      const list = this.#static.get(name) ?? [];
      for (const text of texts) {
        const parsed = parseIp(text);
        if (!parsed) {
          throw new RangeError(
            `Cannot create resolver: hosts[${
              JSON.stringify(rawName)
            }] address "${text}" is not an IP`,
          );
        }
        const address = unmapIpv4(parsed);
        if (!list.some((known) => sameIp(known, address))) list.push(address);
      }
      this.#static.set(name, list);
    }
    this.#hostsFile = config.hostsFile;
    this.#servers = config.servers.length > 0 ? config.servers.map(parseServer) : [undefined];
    this.#timeoutMs = config.timeoutMs;
    this.#negativeTtlSeconds = config.negativeTtlSeconds;
    this.#now = options.now ?? Date.now;
    this.#cache = new NameCache({
      maxSize: config.cacheSize,
      maxTtlSeconds: config.maxTtlSeconds,
      negativeTtlSeconds: config.negativeTtlSeconds,
      now: this.#now,
    });
    this.#query = options.query ?? denoQuery;
    this.#queryPtr = options.queryPtr ?? denoPtrQuery;
    this.#hostsCheckIntervalMs = options.hostsCheckIntervalMs ?? 5000;
    this.#resolutionDelayMs = options.resolutionDelayMs ?? 50;
  }

  /**
   * Resolves `name` to its addresses, waiting for every DNS query (the complete answer of
   * {@linkcode Resolver.resolveStaged}).
   *
   * @throws {NameNotResolvedError} (REP 4) when the name has no usable address, is invalid,
   *   or DNS timed out or failed.
   * @throws the signal's reason when `options.signal` aborts first.
   */
  resolve(name: string, options: { signal?: AbortSignal } = {}): Promise<ResolvedName> {
    return this.resolveStaged(name, options).complete;
  }

  /**
   * Resolves `name` in two stages (RFC 8305 §3): `first` settles as soon as there is an
   * address worth connecting to, `complete` once every query is done. Each caller gets its
   * own lists. Either promise may be left unawaited; the caller stays interested in the
   * lookup until `complete` settles or `options.signal` aborts, and the last caller to leave
   * cancels the queries.
   *
   * Both reject with {@linkcode NameNotResolvedError} (REP 4) when the name has no usable
   * address, is invalid, or DNS timed out or failed; with the signal's reason when
   * `options.signal` aborts first.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { type DnsQuery, Resolver } from "./resolver.ts";
   *
   * // A server that answers A at once and AAAA late.
   * const query: DnsQuery = (_name, type) =>
   *   type === "A"
   *     ? Promise.resolve(["192.0.2.1"])
   *     : new Promise((resolve) => setTimeout(() => resolve(["2001:db8::1"]), 100));
   * const resolver = new Resolver({
   *   prefer: "happy-eyeballs",
   *   hosts: {},
   *   hostsFile: "",
   *   servers: [],
   *   timeoutMs: 5000,
   *   cacheSize: 100,
   *   maxTtlSeconds: 300,
   *   negativeTtlSeconds: 30,
   * }, { query, resolutionDelayMs: 10 });
   * const { first, complete } = resolver.resolveStaged("www.example");
   * assert.equal((await first).v6.length, 0);
   * assert.equal((await complete).v6.length, 1);
   * ```
   */
  resolveStaged(name: string, options: { signal?: AbortSignal } = {}): StagedResolution {
    const stages = this.#stages(name, options.signal);
    const first = stages.then((lookup) => lookup.first).then(copyAnswer);
    const complete = stages.then((lookup) => lookup.complete).then(copyAnswer);
    // A caller may await only one of them; the other's rejection is no unhandled error.
    first.catch(() => {});
    complete.catch(() => {});
    return { first, complete };
  }

  async #stages(name: string, signal: AbortSignal | undefined): Promise<Lookup> {
    signal?.throwIfAborted();
    const literal = literalAddress(name);
    if (literal) {
      return settledLookup(
        literal.family === 4
          ? { name, v4: [literal], v6: [], source: "literal" }
          : { name, v4: [], v6: [literal], source: "literal" },
      );
    }
    const normalized = normalizeName(name);
    if (normalized === null) throw new NameNotResolvedError(name, "not a valid host name");

    const fromStatic = this.#answer(normalized, this.#static.get(normalized), "static");
    if (fromStatic) return settledLookup(fromStatic);

    if (this.#hostsFile !== "") {
      const hosts = await abortable(this.#loadHosts(), signal);
      const fromHosts = this.#answer(normalized, hosts.get(normalized), "hosts");
      if (fromHosts) return settledLookup(fromHosts);
    }

    const cached = this.#cache.get(normalized);
    if (cached) {
      this.stats.hits++;
      if (cached.kind === "negative") throw new NameNotResolvedError(normalized, cached.reason);
      return settledLookup({
        name: normalized,
        v4: [...cached.v4],
        v6: [...cached.v6],
        source: "cache",
      });
    }

    this.stats.misses++;
    let entry = this.#inflight.get(normalized);
    // A lookup every waiter gave up on is being cancelled; start afresh rather than join it.
    if (!entry || entry.controller.signal.aborted) {
      const controller = new AbortController();
      const lookup = this.#lookup(normalized, controller.signal);
      const complete = lookup.complete.finally(() => {
        if (this.#inflight.get(normalized) === entry) this.#inflight.delete(normalized);
      });
      // Every waiter may leave before the lookup settles; its rejection is theirs to ignore.
      complete.catch(() => {});
      lookup.first.catch(() => {});
      entry = { first: lookup.first, complete, controller, waiters: 0 };
      this.#inflight.set(normalized, entry);
    }
    const shared = entry;
    shared.waiters++;
    const complete = abortable(shared.complete, signal).finally(() => {
      // The last waiter to give up cancels the queries; after settling this is a no-op.
      if (--shared.waiters === 0) shared.controller.abort();
    });
    return { first: abortable(shared.first, signal), complete };
  }

  /**
   * Finds the name of `address` (a reverse lookup): the config's static `hosts` first, then
   * the hosts file (the first name listed for the address), then a DNS PTR query, tried
   * against the configured servers like forward queries. Not cached.
   *
   * @throws {NameNotResolvedError} (REP 4) when no source knows a name, or DNS failed.
   * @throws the signal's reason when `options.signal` aborts first.
   */
  async reverse(address: IpAddress, options: { signal?: AbortSignal } = {}): Promise<ReverseName> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const wanted = unmapIpv4(address);
    const find = (map: ReadonlyMap<string, readonly IpAddress[]>) => {
      for (const [name, list] of map) if (list.some((a) => sameIp(a, wanted))) return name;
      return undefined;
    };
    const fromStatic = find(this.#static);
    if (fromStatic !== undefined) return { name: fromStatic, source: "static" };
    if (this.#hostsFile !== "") {
      const fromHosts = find(await abortable(this.#loadHosts(), signal));
      if (fromHosts !== undefined) return { name: fromHosts, source: "hosts" };
    }
    const arpa = reverseName(wanted);
    let failure: unknown;
    let timedOut = false;
    for (const server of this.#servers) {
      signal?.throwIfAborted();
      this.stats.queries++;
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const querySignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        const records = await this.#queryPtr(
          arpa,
          server ? { nameServer: server, signal: querySignal } : { signal: querySignal },
        );
        for (const record of records) {
          const name = normalizeName(record);
          if (name !== null) return { name, source: "dns" };
        }
        throw new NameNotResolvedError(formatIp(wanted), "no PTR record");
      } catch (error) {
        signal?.throwIfAborted();
        if (error instanceof NameNotResolvedError) throw error;
        if (error instanceof Deno.errors.NotFound) {
          throw new NameNotResolvedError(formatIp(wanted), "no PTR record");
        }
        failure = error;
        timedOut = timeout.aborted || error instanceof Deno.errors.TimedOut;
      }
    }
    throw timedOut
      ? new NameNotResolvedError(
        formatIp(wanted),
        `DNS PTR query timed out after ${this.#timeoutMs} ms`,
        { cause: failure, timedOut: true },
      )
      : new NameNotResolvedError(
        formatIp(wanted),
        `DNS PTR query failed: ${errorText(failure)}`,
        { cause: failure },
      );
  }

  #answer(
    name: string,
    addresses: readonly IpAddress[] | undefined,
    source: ResolveSource,
  ): ResolvedName | undefined {
    if (!addresses) return undefined;
    const v4 = this.#prefer === "ipv6-only" ? [] : addresses.filter((a) => a.family === 4);
    const v6 = this.#prefer === "ipv4-only" ? [] : addresses.filter((a) => a.family === 6);
    return v4.length + v6.length > 0 ? { name, v4, v6, source } : undefined;
  }

  /**
   * Sends the queries `prefer` allows, in parallel; `first` settles early per RFC 8305 §3,
   * `complete` when every query is done (and caches the answer).
   */
  #lookup(name: string, signal: AbortSignal): Lookup {
    const types: DnsRecordType[] = this.#prefer === "ipv4-only"
      ? ["A"]
      : this.#prefer === "ipv6-only"
      ? ["AAAA"]
      : ["A", "AAAA"];
    const queries = types.map((type) => this.#queryType(name, type, signal));
    const complete = Promise.all(queries).then((outcomes) => this.#complete(name, types, outcomes));
    if (queries.length < 2) return { first: complete, complete };

    const preferred: DnsRecordType = this.#prefer === "ipv4" ? "A" : "AAAA";
    const first = new Promise<ResolvedName>((resolve, reject) => {
      const arrived: QueryOutcome[] = [];
      let timer: ReturnType<typeof setTimeout> | undefined;
      const early = () => {
        clearTimeout(timer);
        const { v4, v6 } = collect(arrived);
        resolve({ name, v4, v6, source: "dns" });
      };
      types.forEach((type, index) => {
        queries[index]!.then((outcome) => {
          // Nothing to connect to yet: wait for the other query (or the complete answer).
          if (outcome.kind !== "records") return;
          arrived.push(outcome);
          if (type === preferred) early();
          else timer ??= setTimeout(early, this.#resolutionDelayMs);
        }, () => {});
      });
      complete.then(resolve, reject).finally(() => clearTimeout(timer));
    });
    return { first, complete };
  }

  #complete(
    name: string,
    types: readonly DnsRecordType[],
    outcomes: readonly QueryOutcome[],
  ): ResolvedName {
    const { v4, v6, ttl: recordTtl } = collect(outcomes);
    let ttl = recordTtl;
    let failure: (QueryOutcome & { kind: "error" }) | undefined;
    for (const outcome of outcomes) {
      if (outcome.kind !== "error") continue;
      if (!failure || (outcome.timedOut && !failure.timedOut)) failure = outcome;
    }
    if (v4.length + v6.length > 0) {
      // One family failed: keep what we have, but only briefly, so the other is asked again.
      if (failure) ttl = Math.min(ttl ?? Infinity, this.#negativeTtlSeconds);
      this.#cache.setPositive(name, v4, v6, ttl);
      return { name, v4, v6, source: "dns" };
    }
    if (failure) {
      throw new NameNotResolvedError(name, failureText(failure, this.#timeoutMs), {
        cause: failure.error,
        ...(failure.timedOut ? { timedOut: true } : {}),
      });
    }
    const reason = `no ${types.join(" or ")} record`;
    this.#cache.setNegative(name, reason);
    throw new NameNotResolvedError(name, reason);
  }

  async #queryType(name: string, type: DnsRecordType, signal: AbortSignal): Promise<QueryOutcome> {
    let failure: QueryOutcome = { kind: "error", error: undefined, timedOut: false };
    for (const server of this.#servers) {
      signal.throwIfAborted();
      this.stats.queries++;
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const querySignal = AbortSignal.any([signal, timeout]);
      const startedAt = performance.now();
      try {
        const records = await this.#query(
          name,
          type,
          server ? { nameServer: server, signal: querySignal } : { signal: querySignal },
        );
        const addresses: IpAddress[] = [];
        let ttl: number | undefined;
        for (const record of records) {
          const text = typeof record === "string" ? record : record.data;
          const parsed = parseIp(text);
          if (!parsed || parsed.family !== (type === "A" ? 4 : 6)) continue;
          // An IPv4-mapped AAAA answer is the IPv4 address it stands for (one form for rules);
          // `prefer` then judges it as IPv4.
          const address = unmapIpv4(parsed);
          if (address.family === 4 && this.#prefer === "ipv6-only") continue;
          addresses.push(address);
          if (typeof record !== "string") ttl = Math.min(ttl ?? Infinity, record.ttl);
        }
        // An empty answer is authoritative: another server would not know better.
        return addresses.length > 0 ? { kind: "records", addresses, ttl } : { kind: "none" };
      } catch (error) {
        signal.throwIfAborted();
        if (error instanceof Deno.errors.NotFound) return { kind: "none" };
        failure = {
          kind: "error",
          error,
          timedOut: timeout.aborted || error instanceof Deno.errors.TimedOut,
          ourTimeout: timeout.aborted,
          elapsedMs: performance.now() - startedAt,
        };
      }
    }
    return failure;
  }

  #loadHosts(): Promise<Map<string, IpAddress[]>> {
    const current = this.#hosts;
    if (current && this.#now() - current.checkedAt < this.#hostsCheckIntervalMs) {
      return Promise.resolve(current.map);
    }
    this.#hostsLoading ??= this.#reloadHosts().finally(() => {
      this.#hostsLoading = undefined;
    });
    return this.#hostsLoading;
  }

  async #reloadHosts(): Promise<Map<string, IpAddress[]>> {
    const checkedAt = this.#now();
    let stamp: string | null = null;
    try {
      const info = await Deno.stat(this.#hostsFile);
      stamp = `${info.mtime?.getTime() ?? "?"}:${info.size}`;
    } catch {
      // A missing or unreadable hosts file means no entries, not a failure of every lookup.
    }
    const current = this.#hosts;
    if (current && stamp !== null && current.stamp === stamp) {
      current.checkedAt = checkedAt;
      return current.map;
    }
    let map = new Map<string, IpAddress[]>();
    if (stamp !== null) {
      try {
        map = parseHostsFile(await Deno.readTextFile(this.#hostsFile));
      } catch {
        stamp = null;
      }
    }
    this.#hosts = { map, stamp, checkedAt };
    return map;
  }
}

/**
 * Parses a DNS server as configured: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
 *
 * @throws {RangeError} when it is none of those.
 */
function parseServer(text: string): NameServer {
  const bare = parseIp(text);
  if (bare) return { ipAddr: formatIp(bare), port: 53 };
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text);
  const address = match ? parseIp(match[1]!) : null;
  const port = match ? Number(match[2]) : NaN;
  if (!address || !(port >= 1 && port <= 65535)) {
    throw new RangeError(`Cannot create resolver: DNS server "${text}" is not IP[:PORT]`);
  }
  return { ipAddr: formatIp(address), port };
}

/** The `in-addr.arpa` / `ip6.arpa` name of an address, for a PTR query. */
export function reverseName(address: IpAddress): string {
  if (address.family === 4) return `${[...address.bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const byte of address.bytes) {
    nibbles.push((byte >> 4).toString(16), (byte & 15).toString(16));
  }
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

/** The addresses of the outcomes with records, by family, and their smallest TTL. */
function collect(
  outcomes: readonly QueryOutcome[],
): { v4: IpAddress[]; v6: IpAddress[]; ttl: number | undefined } {
  const v4: IpAddress[] = [];
  const v6: IpAddress[] = [];
  let ttl: number | undefined;
  for (const outcome of outcomes) {
    if (outcome.kind !== "records") continue;
    for (const address of outcome.addresses) (address.family === 4 ? v4 : v6).push(address);
    if (outcome.ttl !== undefined) ttl = Math.min(ttl ?? Infinity, outcome.ttl);
  }
  return { v4, v6, ttl };
}

/** A lookup that needed no DNS: both stages are the one answer. */
function settledLookup(answer: ResolvedName): Lookup {
  const settled = Promise.resolve(answer);
  return { first: settled, complete: settled };
}

function copyAnswer(answer: ResolvedName): ResolvedName {
  return { ...answer, v4: [...answer.v4], v6: [...answer.v6] };
}

/**
 * What a failed query says: our own timeout is quoted with its figure; a resolver that gave up
 * by itself (the system resolver has its own timeout and retries) with its error and the time
 * it really took.
 */
function failureText(failure: QueryOutcome & { kind: "error" }, timeoutMs: number): string {
  if (failure.ourTimeout) return `DNS query timed out after ${timeoutMs} ms`;
  const message = errorText(failure.error);
  const elapsed = failure.elapsedMs === undefined
    ? ""
    : ` after ${Math.round(failure.elapsedMs)} ms`;
  return failure.timedOut
    ? `DNS query timed out in the resolver${elapsed}: ${message}`
    : `DNS query failed: ${message}`;
}
