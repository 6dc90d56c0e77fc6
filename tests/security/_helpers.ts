/**
 * Shared by the security tests: run the attacking client in a namespace, read the gateway's
 * metrics from inside the gateway host.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "../helpers/dualgate.ts";
import type { HostName, Topology } from "../helpers/netns.ts";
import { sampleValue } from "../helpers/http_get.ts";

const ATTACKER = fileURLToPath(new URL("./_attacker.ts", import.meta.url));

/** Runs `_attacker.ts` with `plan` on `host` and returns its JSON result. */
export async function attack<T>(
  topo: Topology,
  host: HostName,
  plan: Record<string, unknown>,
  timeoutMs = 120_000,
): Promise<T> {
  const result = await topo.run(
    host,
    Deno.execPath(),
    ["run", "--no-config", "--allow-net", ATTACKER, JSON.stringify(plan)],
    { cwd: REPO_ROOT, timeoutMs },
  );
  if (!result.success) {
    throw new Error(`Cannot attack: exit ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return JSON.parse(result.stdout.trim().split("\n").pop()!) as T;
}

/** The gateway's `/metrics` (admin listener on the gateway host's loopback). */
export async function scrape(topo: Topology, port = 9090): Promise<(series: string) => number> {
  const result = await topo.run("gateway", "curl", [
    "-sS",
    "--max-time",
    "10",
    `http://127.0.0.1:${port}/metrics`,
  ], { check: true });
  return (series) => sampleValue(result.stdout, series);
}

/** Polls (bounded) until `check` holds; a log line is written after the client has finished. */
export async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
}
