/**
 * A real IRC server (ngircd, Debian's `ngircd`) for e2e tests, in one host of a topology.
 *
 * @module
 */

import type { HostName, SpawnedProcess, Topology } from "./netns.ts";

/** The port ngircd listens on. */
export const IRC_PORT = 6667;

/** ngircd on one address only, without DNS, ident or PAM lookups, in the foreground. */
function ngircdConfig(address: string, dir: string): string {
  return [
    "[Global]",
    "Name = irc.dualgate.example",
    "Info = dualgate e2e",
    `Listen = ${address}`,
    `Ports = ${IRC_PORT}`,
    `PidFile = ${dir}/ngircd.pid`,
    "MotdPhrase = hello",
    "[Limits]",
    "MaxConnectionsIP = 0",
    "[Options]",
    "DNS = no",
    "Ident = no",
    "PAM = no",
    "",
  ].join("\n");
}

/**
 * Starts ngircd on `host` at `address` (config and pid file in `dir`, created if needed) and
 * waits until it listens.
 */
export async function startNgircd(
  topo: Topology,
  host: HostName,
  address: string,
  dir: string,
): Promise<SpawnedProcess> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/ngircd.conf`, ngircdConfig(address, dir));
  const ircd = topo.spawn(host, "ngircd", ["-n", "-f", `${dir}/ngircd.conf`]);
  try {
    await ircd.waitForTcp(address, IRC_PORT, { timeoutMs: 20_000, process: ircd });
  } catch (error) {
    await ircd[Symbol.asyncDispose]();
    throw error;
  }
  return ircd;
}
