/**
 * The Socks Lib's policy (RFC 3089 §3): which hosts go direct, which are delegated to the gateway
 * by name, and which fake address stands for a name in the caller's own family.
 *
 * Runtime-neutral (no `Deno.*`), so the Node preload bundles it too.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp, unmapIpv4 } from "../net/address.ts";
import { cidrContains, HOST_LOCAL_CIDRS } from "../net/cidr.ts";
import type { SocksAddress } from "../socks5/types.ts";
import { DelegationTable, type DelegationTableOptions, normalizeName } from "./delegation_table.ts";

/** Options of {@linkcode SocksPolicy}. */
export interface SocksPolicyOptions {
  /**
   * Families this host can reach natively: a literal of another family is delegated like a
   * name. The first one is "the caller's family" for fakes handed out on connect.
   * @default {[4]}
   */
  readonly nativeFamilies?: readonly (4 | 6)[];
  /**
   * Names resolved locally, never delegated: exact names, or `*.suffix` / `.suffix` for a whole
   * domain. `localhost` and `*.localhost` always are.
   * @default {[]}
   */
  readonly bypass?: readonly string[];
  /** The table, or options to create one. @default {new DelegationTable()} */
  readonly table?: DelegationTable | DelegationTableOptions;
}

/** Where a connection goes. */
export type Route =
  | { readonly kind: "direct" }
  | {
    readonly kind: "delegate";
    /** What the SOCKS request carries: the name (ATYP 3) or a literal the host cannot reach. */
    readonly target: SocksAddress;
    /** The address the program sees as its peer (the fake, or the literal). */
    readonly peer: IpAddress;
    /** The name for TLS SNI, when there is one. */
    readonly name: string | undefined;
  };

/** A fake address that is in a fake range but not in the table (expired, or another process's). */
export class UnknownFakeAddressError extends Error {
  /** The address. */
  readonly address: IpAddress;
  /** Creates the error. */
  constructor(address: IpAddress) {
    super(
      `Cannot connect to ${
        formatIp(address)
      }: it is a fake address that is not in the delegation table (expired, or handed out by another process)`,
    );
    this.name = "UnknownFakeAddressError";
    this.address = address;
  }
}

/**
 * Decides, for each host a program names, whether to go direct or through the gateway, and hands
 * out fake addresses.
 *
 * @example
 * ```ts
 * import { SocksPolicy } from "./socks_lib.ts";
 * import { formatIp } from "../net/address.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = new SocksPolicy({ nativeFamilies: [4], bypass: ["*.lan"] });
 * const fake = policy.lookup("v6.dualgate.example", 0)!;
 * assert.equal(formatIp(fake), "198.18.0.1");
 * const route = policy.route(formatIp(fake));
 * assert.equal(route.kind === "delegate" && route.name, "v6.dualgate.example");
 * assert.equal(policy.lookup("printer.lan", 0), null); // resolved locally
 * assert.equal(policy.route("2001:db8::1").kind, "delegate"); // no native IPv6 here
 * ```
 */
export class SocksPolicy {
  /** The delegation table. */
  readonly table: DelegationTable;
  /** Families reachable natively; the first is the caller's family. */
  readonly nativeFamilies: readonly (4 | 6)[];
  readonly #exact = new Set<string>(["localhost"]);
  readonly #suffixes: string[] = [".localhost"];

  /**
   * Creates a policy.
   *
   * @throws {TypeError} when a bypass entry is not a valid name pattern.
   */
  constructor(options: SocksPolicyOptions = {}) {
    this.table = options.table instanceof DelegationTable
      ? options.table
      : new DelegationTable(options.table ?? {});
    this.nativeFamilies = options.nativeFamilies?.length ? [...options.nativeFamilies] : [4];
    for (const entry of options.bypass ?? []) {
      const pattern = entry.startsWith("*.") ? entry.slice(1) : entry;
      if (pattern.startsWith(".")) this.#suffixes.push(`.${normalizeName(pattern.slice(1))}`);
      else this.#exact.add(normalizeName(pattern));
    }
  }

  /** The caller's own family (RFC 3089: fakes are of this family). */
  get family(): 4 | 6 {
    return this.nativeFamilies[0]!;
  }

  /** True when `name` is resolved locally. */
  bypasses(name: string): boolean {
    let key: string;
    try {
      key = normalizeName(name);
    } catch {
      return true; // not a name we could delegate: let the local resolver answer
    }
    return this.#exact.has(key) || this.#suffixes.some((s) => key.endsWith(s));
  }

  /**
   * The fake address for `name` (family 0: the caller's), or `null` when the name is resolved
   * locally (bypass list, localhost, IP literal).
   */
  lookup(name: string, family: 0 | 4 | 6): IpAddress | null {
    if (parseIp(name) || this.bypasses(name)) return null;
    return this.table.lookup(name, family === 0 ? this.family : family);
  }

  /**
   * The route for a connection to `host` (a name or an IP literal).
   *
   * @throws {UnknownFakeAddressError} for a fake address the table does not hold.
   */
  route(host: string): Route {
    const literal = parseIp(host);
    if (!literal) {
      if (this.bypasses(host)) return { kind: "direct" };
      const name = normalizeName(host);
      return {
        kind: "delegate",
        target: { family: "name", name },
        peer: this.table.lookup(name, this.family),
        name,
      };
    }
    const address = unmapIpv4(literal);
    if (this.table.isFake(address)) {
      const name = this.table.resolve(address);
      if (name === undefined) throw new UnknownFakeAddressError(address);
      return { kind: "delegate", target: { family: "name", name }, peer: address, name };
    }
    if (
      this.nativeFamilies.includes(address.family) ||
      HOST_LOCAL_CIDRS.some((cidr) => cidrContains(cidr, address))
    ) {
      return { kind: "direct" };
    }
    return { kind: "delegate", target: address, peer: address, name: undefined };
  }

  /**
   * Pins the fake address of a delegated route while a connection uses it; returns the release
   * function (a no-op for literals and direct routes).
   */
  hold(route: Route): () => void {
    if (route.kind !== "delegate" || !this.table.isFake(route.peer)) return () => {};
    return this.table.pin(route.peer);
  }
}
