/**
 * A resolver configuration for unit tests: no servers, an empty hosts file path, small limits;
 * fields given override the defaults.
 *
 * @module
 */

import type { ResolverConfig } from "../../resolver/options.ts";

/** A {@linkcode ResolverConfig} that asks no DNS server, with `overrides` applied. */
export function testResolverConfig(overrides: Partial<ResolverConfig> = {}): ResolverConfig {
  return {
    prefer: "happy-eyeballs",
    hosts: {},
    hostsFile: "",
    servers: [],
    timeoutMs: 2_000,
    cacheSize: 100,
    maxTtlSeconds: 300,
    negativeTtlSeconds: 30,
    ...overrides,
  };
}
