/**
 * Configurations that are valid but expose more than their author may think. `main.ts check`
 * prints these warnings and the gateway logs them once at start, from this one function.
 *
 * @module
 */

import { formatEndpoint, type IpAddress, parseIp, sameIp, unmapIpv4 } from "../../net/address.ts";
import { isHostLocal, isLoopback } from "../../net/cidr.ts";
import { declaredAddresses } from "./own_addresses.ts";
import type { Config, HopEndpoint } from "./types.ts";

/** One warning: where in the config (YAML key path), and what is exposed. */
export interface ConfigWarning {
  /** The config key it is about, e.g. `auth.users[0].password`. */
  readonly path: string;
  /** What is exposed, in lower case. */
  readonly message: string;
}

/**
 * The warnings for `config`:
 * - a non-loopback listener without `auth` and without `rules` is an open proxy;
 * - a plain-text `password` (rather than `password_hash`) while a listener is not on loopback:
 *   the config file holds a secret that works from the network;
 * - an `admin` listener on a non-loopback address (allowed only with `admin.auth`): its
 *   credentials and figures travel as plain HTTP;
 * - a non-loopback listener that takes PROXY headers without `trusted_proxies`: it accepts them
 *   only from loopback, so a balancer on another host is refused;
 * - a route whose first hop has an alternative on this host (a loopback or "this host" literal,
 *   `localhost`, or one of the addresses the config declares) without `?proxy_protocol=v2`: that
 *   hop sees this gateway as its client, on loopback, and exempts the relayed clients from its
 *   host-local protection. This gateway refuses what is host-local (`localhost`, names it
 *   resolves to this host, literals) and names it cannot resolve, and forwards other names as
 *   the address it checked; the hop's own rules and logs still see this gateway, not the client.
 *   A hop given by another name, or by an interface address not in the config, is not seen here.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./load.ts";
 * import { configWarnings } from "./warnings.ts";
 *
 * const config = parseConfig(
 *   'listen: ["127.0.0.1:1080"]\nadmin: { listen: "0.0.0.0:9090", auth: { token_sha256: "' +
 *     "0".repeat(64) + '" } }',
 * );
 * const [warning] = configWarnings(config);
 * if (warning?.path !== "admin.listen") throw new Error();
 * ```
 */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const exposed = config.listen.filter((entry) => !isLoopback(entry.endpoint.address));
  if (config.auth.users.length === 0 && config.rules === null) {
    config.listen.forEach((entry, i) => {
      if (isLoopback(entry.endpoint.address)) return;
      warnings.push({
        path: `listen[${i}]`,
        message: `${
          formatEndpoint(entry.endpoint)
        } is an open proxy: a non-loopback listener without auth and without rules`,
      });
    });
  }
  if (exposed.length > 0) {
    const where = exposed.map((entry) => formatEndpoint(entry.endpoint)).join(", ");
    config.auth.users.forEach((user, i) => {
      if (user.password === undefined) return;
      warnings.push({
        path: `auth.users[${i}].password`,
        message: `user "${user.name}" has a plain-text password and ${where} ` +
          `${exposed.length > 1 ? "are" : "is"} not loopback: prefer password_hash`,
      });
    });
  }
  if (config.admin && !isLoopback(config.admin.endpoint.address)) {
    warnings.push({
      path: "admin.listen",
      message: `${
        formatEndpoint(config.admin.endpoint)
      } is not a loopback address: admin credentials and figures travel as plain HTTP (keep it on a trusted network or behind TLS)`,
    });
  }
  config.listen.forEach((entry, i) => {
    if (entry.proxyProtocol === undefined || entry.trustedProxies !== undefined) return;
    if (isLoopback(entry.endpoint.address)) return;
    warnings.push({
      path: `listen[${i}]`,
      message: `${formatEndpoint(entry.endpoint)} takes PROXY headers without ` +
        "trusted_proxies, so only from loopback: a balancer on another host is refused " +
        "(list its address in trusted_proxies)",
    });
  });
  const declared = declaredAddresses(config);
  config.routes.forEach((route, i) => {
    for (const hop of route.chain[0]?.alternatives ?? []) {
      if (hop.proxyProtocol !== undefined || !onThisHost(hop, declared)) continue;
      warnings.push({
        path: `routes[${i}].chain[0]`,
        message: `${hop.label} is on this host and gets no PROXY header: it sees this gateway ` +
          "as a loopback client (its rules and logs do not see the real client), and names " +
          "are resolved here and forwarded as addresses (names only the hop knows are " +
          "refused); add ?proxy_protocol=v2 to the hop URL and proxy_protocol to the hop's " +
          "listener",
      });
    }
  });
  return warnings;
}

/** True when a hop, as written, is on this host: by literal, `localhost`, or a declared address. */
function onThisHost(hop: HopEndpoint, declared: readonly IpAddress[]): boolean {
  const host = hop.host.toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const parsed = parseIp(host);
  if (!parsed) return false;
  const address = unmapIpv4(parsed);
  return isHostLocal(address) || declared.some((own) => sameIp(own, address));
}

/** `path: message`, the form `check` prints and the log line carries. */
export function formatConfigWarning(warning: ConfigWarning): string {
  return `${warning.path}: ${warning.message}`;
}
