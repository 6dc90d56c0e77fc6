/**
 * Shared pieces of the security attack suites: the raw SOCKS probe run in a client host,
 * destinations spelled byte for byte, and small services (a TCP banner, a UDP echo, a DNS server
 * that answers AAAA with what it is told) run with python3 in any host; the attacking client
 * (`_attacker.ts`) run in a namespace, and the gateway's metrics read from inside the gateway host.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseIp } from "../../net/address.ts";
import { REPO_ROOT, startDualgate } from "../helpers/dualgate.ts";
import type { HostName, SpawnedProcess, Topology } from "../helpers/netns.ts";
import { sampleValue } from "../helpers/http_get.ts";
import type { ProbeInput, ProbeTarget } from "./_socks_probe.ts";

/** Programs the suites need besides `ip`. */
export const PROGRAMS = ["python3"];

const PROBE = fileURLToPath(new URL("./_socks_probe.ts", import.meta.url));

/** What the probe reports. */
export interface ProbeOutcome {
  /** REP of the (outer) request; `null` when the session ended before a reply. */
  readonly rep: number | null;
  /** Why there was no reply. */
  readonly why?: string;
  /** What the destination sent first (CONNECT). */
  readonly data?: string;
  /** The inner session's outcome (mode `nested`). */
  readonly inner?: ProbeOutcome;
  /** Payloads of the datagrams that came back (mode `udp`). */
  readonly replies?: string[];
}

/** Runs the probe in `client` and returns its outcome. */
export async function probe(
  topo: Topology,
  client: HostName,
  input: ProbeInput,
): Promise<ProbeOutcome> {
  const r = await topo.run(client, Deno.execPath(), [
    "run",
    "--no-config",
    "--unstable-net",
    "--allow-net",
    PROBE,
    JSON.stringify(input),
  ], { timeoutMs: 30_000 });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as ProbeOutcome;
  } catch {
    throw new Error(`probe printed no outcome (code ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

/**
 * A destination exactly as written: an IP literal as ATYP 1 or 4 with its own bytes (an
 * IPv4-mapped literal stays ATYP 4), anything else as a name (ATYP 3). `asName` sends an IP
 * literal as ATYP 3 text.
 */
export function dst(text: string, port: number, asName = false): ProbeTarget {
  const address = asName ? null : parseIp(text);
  if (!address) return { atyp: 3, name: text, port };
  const hex = [...address.bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { atyp: address.family === 4 ? 1 : 4, hex, port };
}

/** The gateway's SOCKS endpoint as seen from `client`. */
export function gatewayFor(topo: Topology, client: "client4" | "client6", port = 1080) {
  return {
    host: client === "client4" ? topo.addresses.gateway.v4 : topo.addresses.gateway.v6,
    port,
  };
}

async function waitForOutput(process: SpawnedProcess, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pattern.test(process.stdout)) return;
    if (process.exited) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${pattern} from ${process.host}: ${process.stdout}\n${process.stderr}`);
}

const SERVICES = String.raw`
import socket, sys, threading
kind, address, port, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
if kind == "tcp":
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and address == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((address, port))
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(text.encode() + b"\n")
        finally:
            c.close()
elif kind == "udp":
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((address, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
elif kind == "dns":
    # Answers AAAA queries for every name with the address in text; A queries with no record.
    answer = socket.inet_pton(socket.AF_INET6, text)
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((address, port))
    print("ready", flush=True)
    while True:
        query, peer = s.recvfrom(512)
        i = 12
        while query[i] != 0:
            i += query[i] + 1
        qtype = int.from_bytes(query[i + 1:i + 3], "big")
        question = query[12:i + 5]
        count = 1 if qtype == 28 else 0
        header = query[0:2] + b"\x81\x80" + b"\x00\x01" + count.to_bytes(2, "big") + b"\x00\x00\x00\x00"
        body = question
        if count:
            body += b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10" + answer
        s.sendto(header + body, peer)
`;

/** A TCP service on `host` at `address`:`port` that sends `banner` to whoever connects. */
export async function tcpBanner(
  topo: Topology,
  host: HostName,
  address: string,
  port: number,
  banner: string,
): Promise<SpawnedProcess> {
  const process = topo.spawn(host, "python3", [
    "-c",
    SERVICES,
    "tcp",
    address,
    String(port),
    banner,
  ]);
  await waitForOutput(process, /ready/);
  return process;
}

/** A UDP echo service on `host` at `address`:`port`. */
export async function udpEcho(
  topo: Topology,
  host: HostName,
  address: string,
  port: number,
): Promise<SpawnedProcess> {
  const process = topo.spawn(host, "python3", ["-c", SERVICES, "udp", address, String(port), ""]);
  await waitForOutput(process, /ready/);
  return process;
}

/** A DNS server on `host` at `address`:`port` answering every AAAA query with `aaaa`. */
export async function dnsServer(
  topo: Topology,
  host: HostName,
  address: string,
  port: number,
  aaaa: string,
): Promise<SpawnedProcess> {
  const process = topo.spawn(host, "python3", ["-c", SERVICES, "dns", address, String(port), aaaa]);
  await waitForOutput(process, /ready/);
  return process;
}

/** Starts dualgate on the gateway host with `yaml`, waiting for the given listeners. */
export function gateway(
  topo: Topology,
  dir: string,
  yaml: string,
  waitFor?: readonly (readonly [string, number])[],
): Promise<SpawnedProcess> {
  return startDualgate(topo, yaml, { dir, ...(waitFor ? { waitFor } : {}) });
}

/**
 * CONNECTs from `client` to each named target and returns those not refused with REP 2, named
 * with their outcome (`[]`: every one was refused).
 */
export async function notRefused(
  topo: Topology,
  client: "client4" | "client6",
  targets: Iterable<readonly [string, ProbeTarget]>,
): Promise<string[]> {
  const through: string[] = [];
  for (const [what, target] of targets) {
    const outcome = await probe(topo, client, {
      mode: "connect",
      gateway: gatewayFor(topo, client),
      target,
    });
    if (outcome.rep !== 2) through.push(`${what}: ${JSON.stringify(outcome)}`);
  }
  return through;
}

/** Asserts a refusal by the rules: REP 2, and nothing from the destination. */
export function assertRefused(outcome: ProbeOutcome, what: string): void {
  assert.equal(outcome.rep, 2, `${what}: expected REP 2, got ${JSON.stringify(outcome)}`);
}

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
