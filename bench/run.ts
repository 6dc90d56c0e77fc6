/**
 * Side-by-side benchmark on loopback: direct transfer (the harness's limit), dualgate, Dante
 * and microsocks, interleaved repetition by repetition (A B C D, then B C D A, ...), with a
 * table of medians, min–max and ratios. See bench/README.md.
 *
 * ```
 * deno task bench [--quick] [--only dualgate,dante] [--size MiB] [--reps N] [--json FILE]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  OPTIONAL_PEERS,
  type Peer,
  PEER_NAMES,
  type PeerName,
  startPeer,
  type TargetPorts,
} from "./_peers.ts";
import { threadCpuSeconds, treeMemory } from "./_proc.ts";
import {
  addSample,
  type Figure,
  figure,
  medianOf,
  mediansTable,
  percentile,
  ratiosTable,
  type Target,
  targetsTable,
} from "./_report.ts";
import { bulk, connectionRate, type Direction, heldConnections } from "./_scenarios.ts";
import { capAccuracy } from "./_cap.ts";
import { udpRate, udpRoundTrips } from "./_udp.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const encoder = new TextEncoder();

/** The bench's only output channel: its own report. */
function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

const USAGE = `Usage: deno task bench [options]

  --quick                 smoke run (< ~90 s): 2 reps, 64 MiB, 1.5 s rate runs, 1,000 held
  --only LIST             proxies to run, comma-separated: dualgate,dante,microsocks
                          (and dualgate-w2, dualgate with workers: 2; dualgate-http, its HTTP
                          front door through CONNECT; dualgate-egress, every dial from an egress
                          pool: only when named)
                          (direct always runs: it is the reference)
  --size MiB              bytes per single-stream transfer (default 512; quick 64)
  --multi-size MiB        bytes per stream in the 64-stream figure (default 8; quick 2)
  --streams N             concurrent streams (default 64)
  --reps N                repetitions of every interleaved figure (default 5; quick 2)
  --rate-seconds S        length of one connection-rate run (default 3; quick 1.5)
  --concurrency N         concurrent clients in the connection-rate run (default 50); a second
                          run at one client gives the low-load latency and CPU
  --udp-seconds S         length of one UDP rate run (default 2; quick 1)
  --udp-count N           UDP round trips at one client per run (default 2000; quick 500)
  --held LIST             held-connection counts (default 1000,10000 capped by RLIMIT_NOFILE;
                          quick 1000); "0" skips the memory figures
  --cap MiB               per-user cap accuracy: measured vs configured rate at this many
                          MiB/s each way, 3 s a way (default 8; quick 2 s); "0" skips it
  --json FILE             also write every raw sample as JSON
  --help                  this text
`;

interface Options {
  peers: PeerName[];
  size: number;
  multiSize: number;
  streams: number;
  reps: number;
  rateMs: number;
  concurrency: number;
  held: number[];
  udpMs: number;
  udpCount: number;
  json: string | undefined;
  quick: boolean;
  cap: number;
}

function hardFdLimit(): number {
  const out = new Deno.Command("bash", { args: ["-c", "ulimit -Hn"], stdout: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  return text === "unlimited" ? 1 << 20 : Number(text);
}

function parseOptions(args: string[]): Options | null {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      size: { type: "string" },
      "multi-size": { type: "string" },
      streams: { type: "string" },
      reps: { type: "string" },
      "rate-seconds": { type: "string" },
      concurrency: { type: "string" },
      held: { type: "string" },
      "udp-seconds": { type: "string" },
      "udp-count": { type: "string" },
      json: { type: "string" },
      cap: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const quick = values.quick;
  const num = (text: string | undefined, fallback: number, name: string) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`Cannot parse --${name}: "${text}" is not a number`);
    }
    return value;
  };
  let peers: PeerName[] = PEER_NAMES.filter((p) => !OPTIONAL_PEERS.includes(p));
  if (values.only !== undefined) {
    const wanted = values.only.split(",").map((s) => s.trim()).filter(Boolean);
    for (const name of wanted) {
      if (!(PEER_NAMES as readonly string[]).includes(name)) {
        throw new RangeError(`Cannot parse --only: unknown peer "${name}"`);
      }
    }
    peers = PEER_NAMES.filter((p) => p === "direct" || wanted.includes(p));
  }
  // A relayed connection costs a proxy two descriptors. Cap every peer where dualgate caps
  // itself (gateway/limits/fd_limit.ts: a reserve of max(64, limit / 20)), so all hold the same count.
  const limit = hardFdLimit();
  const maxHeld = Math.floor((limit - Math.max(64, Math.ceil(limit / 20))) / 2);
  const held = (values.held ?? (quick ? "1000" : "1000,10000")).split(",")
    .map(Number).filter((n) => n > 0).map((n) => Math.min(n, maxHeld));
  return {
    peers,
    size: Math.round(num(values.size, quick ? 64 : 512, "size") * MiB),
    multiSize: Math.round(num(values["multi-size"], quick ? 2 : 8, "multi-size") * MiB),
    streams: num(values.streams, 64, "streams"),
    reps: Math.max(1, num(values.reps, quick ? 2 : 5, "reps")),
    rateMs: num(values["rate-seconds"], quick ? 1.5 : 3, "rate-seconds") * 1000,
    concurrency: num(values.concurrency, 50, "concurrency"),
    held: [...new Set(held)],
    udpMs: num(values["udp-seconds"], quick ? 1 : 2, "udp-seconds") * 1000,
    udpCount: Math.max(1, num(values["udp-count"], quick ? 500 : 2000, "udp-count")),
    json: values.json,
    quick,
    cap: num(values.cap, 8, "cap") * MiB,
  };
}

/** The target server as a child process; closing its stdin stops it. */
interface TargetServer extends AsyncDisposable {
  readonly ports: TargetPorts;
  readonly pid: number;
}

async function startTargetServer(): Promise<TargetServer> {
  const script = new URL("./target_server.ts", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)"; exec "$@"',
      "bash",
      Deno.execPath(),
      "run",
      "-A",
      script,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start the target server: it exited");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const ports = JSON.parse(text.slice(0, text.indexOf("\n"))) as TargetPorts;
  const stdin = child.stdin.getWriter();
  return {
    ports,
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      await stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** Runs one measurement; a failure becomes a note instead of ending the bench. */
async function attempt<T>(
  notes: string[],
  what: string,
  run: () => Promise<T>,
): Promise<T | null> {
  try {
    return await run();
  } catch (error) {
    notes.push(`${what} failed: ${(error as Error).message}`);
    print(`  ${what} failed: ${(error as Error).message}`);
    return null;
  }
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** PSS of `deno run` of a program that only waits: what the runtime costs before any code. */
async function emptyDenoPss(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "await Deno.stdin.read(new Uint8Array(1));"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return treeMemory(child.pid).pss;
  } finally {
    await child.stdin.close().catch(() => {});
    await child.status;
  }
}

function machine(): string {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1];
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  return `${navigator.hardwareConcurrency} CPUs (${cpu ?? "unknown"}), Linux ` +
    `${Deno.osRelease()}, Deno ${Deno.version.deno}, load average at start ${load}`;
}

async function validate(peer: Peer, families: Map<PeerName, boolean>): Promise<string | null> {
  try {
    for (const direction of ["upload", "download"] as Direction[]) {
      await bulk(peer, direction, MiB, { timeoutMs: 10_000 });
    }
  } catch (error) {
    return `cannot relay IPv4: ${(error as Error).message}`;
  }
  try {
    await bulk(peer, "download", MiB, { family: 6, timeoutMs: 10_000 });
    families.set(peer.name, true);
  } catch (error) {
    families.set(peer.name, false);
    return `v4→v6 skipped: ${(error as Error).message}`;
  }
  return null;
}

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    print(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    print(USAGE);
    return 0;
  }
  const began = performance.now();
  const startedAt = new Date().toISOString();
  const machineLine = machine();
  print(`# dualgate bench — ${startedAt}`);
  print(machineLine);
  print(
    `reps ${options.reps}, single-stream ${options.size / MiB} MiB, ` +
      `${options.streams} streams × ${options.multiSize / MiB} MiB, ` +
      `rate ${options.rateMs / 1000} s × ${options.concurrency} clients, ` +
      `held ${options.held.join(", ") || "none"}`,
  );

  const workDir = await Deno.makeTempDir({ prefix: "dualgate_bench_" });
  await using target = await startTargetServer();
  const peers: Peer[] = [];
  const notes: string[] = [];
  const v6ok = new Map<PeerName, boolean>();
  try {
    for (const name of options.peers) {
      try {
        const peer = await startPeer(name, { workDir, target: target.ports });
        peers.push(peer);
        const problem = await validate(peer, v6ok);
        if (problem) notes.push(`${name}: ${problem}`);
        if (problem?.startsWith("cannot relay")) {
          peers.pop();
          await peer[Symbol.asyncDispose]();
        }
      } catch (error) {
        notes.push(`${name}: not run: ${(error as Error).message}`);
      }
    }
    const names = peers.map((p) => p.name);
    print(`peers: ${names.join(", ")} (all relay verified with a 1 MiB transfer each way)`);
    for (const peer of peers) print(`  ${peer.name}: v4→v6 via ${peer.v6Note}`);

    const figures = {
      up4: figure("1 stream v4→v4 upload", "MiB/s", "higher"),
      down4: figure("1 stream v4→v4 download", "MiB/s", "higher"),
      up6: figure("1 stream v4→v6 (name) upload", "MiB/s", "higher"),
      down6: figure("1 stream v4→v6 (name) download", "MiB/s", "higher"),
      multiUp: figure(`${options.streams} streams upload (sum)`, "MiB/s", "higher"),
      multiDown: figure(`${options.streams} streams download (sum)`, "MiB/s", "higher"),
      rate: figure(
        `connection rate, ${options.concurrency} clients (full SOCKS round trip)`,
        "conn/s",
        "higher",
      ),
      p50: figure("  round-trip latency p50", "ms", "lower", 2),
      p99: figure("  round-trip latency p99", "ms", "lower", 2),
      cpuConn: figure("  proxy CPU per 1,000 round trips", "CPU s", "lower", 3),
      gcShare: figure(
        "  share of proxy CPU in V8's GC helper threads (50 clients)",
        "%",
        "lower",
        1,
      ),
      mainShare: figure("  share of proxy CPU in the main isolate (50 clients)", "%", "lower", 1),
      rate1: figure("connection rate, one client", "conn/s", "higher"),
      p50one: figure("  round trip at one client p50", "ms", "lower", 3),
      p99one: figure("  round trip at one client p99", "ms", "lower", 3),
      cpuOne: figure("  proxy CPU per 1,000 round trips, one client", "CPU s", "lower", 3),
      cpu1: figure("proxy CPU per GiB, single streams", "CPU s/GiB", "lower", 2),
      harness: figure("harness CPU per GiB (client + target), 1 stream", "CPU s/GiB", "lower", 2),
      cpuN: figure(`proxy CPU per GiB, ${options.streams} streams`, "CPU s/GiB", "lower", 2),
      udpRate4: figure("UDP v4→v4 datagrams echoed (64 B, windows of 64)", "dgram/s", "higher"),
      udpRate6: figure("UDP v4→v6 datagrams echoed (64 B, windows of 64)", "dgram/s", "higher"),
      udpLost: figure("  UDP datagrams lost in the rate runs", "%", "lower", 2),
      udpCpu: figure("  proxy CPU per 100,000 UDP datagrams echoed", "CPU s", "lower", 3),
      udpP50v4: figure("UDP round trip at one client v4→v4, p50", "ms", "lower", 3),
      udpP99v4: figure("UDP round trip at one client v4→v4, p99", "ms", "lower", 3),
      udpP50v6: figure("UDP round trip at one client v4→v6, p50", "ms", "lower", 3),
    };
    const memFigures: Figure[] = [];
    const denoFloor = figure(
      "memory of an empty Deno program (the runtime's floor)",
      "MiB",
      "lower",
      1,
    );
    const memIdle = figure("memory idle, fresh (PSS, whole tree)", "MiB", "lower", 1);
    const memAfter = figure("memory idle after the run", "MiB", "lower", 1);
    const heldFigures = options.held.map((n) => ({
      n,
      total: figure(`memory holding ${n.toLocaleString("en-US")} relayed conns`, "MiB", "lower", 1),
      per: figure(`  per held relayed conn (${n.toLocaleString("en-US")})`, "KiB", "lower", 1),
    }));
    const raw: Record<string, unknown>[] = [];
    let rateErrors = "";

    // Memory first, on fresh processes: idle, then each held count.
    const proxies = peers.filter((p) => p.pid !== null);
    const harnessPids = [Deno.pid, target.pid];
    if (options.held.length > 0) {
      for (const peer of proxies) {
        addSample(memIdle, peer.name, treeMemory(peer.pid!).pss / MiB);
      }
      for (const [i, peer] of rotate(proxies, 0).entries()) {
        for (const h of heldFigures) {
          const t0 = performance.now();
          const sample = await attempt(
            notes,
            `held ${h.n} ${peer.name}`,
            () => heldConnections(peer, h.n, { timeoutMs: options.quick ? 15_000 : 45_000 }),
          );
          if (!sample) continue;
          raw.push({ figure: "held", peer: peer.name, order: i, ...sample });
          const grown = sample.during.pss - sample.before.pss;
          addSample(h.total, peer.name, sample.during.pss / MiB);
          if (sample.held > 0) addSample(h.per, peer.name, grown / sample.held / 1024);
          if (sample.held !== h.n) {
            notes.push(
              `${peer.name}: held only ${sample.held} of ${h.n} (${sample.errors} failed opens, ` +
                `first: ${sample.firstError ?? "timeout"}); per-connection figure over those held`,
            );
          }
          print(
            `  held ${peer.name} ${sample.held}/${h.n}: ` +
              `${(sample.during.pss / MiB).toFixed(1)} MiB PSS in ${sample.during.processes} ` +
              `process(es), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
          );
        }
      }
      const floor = await attempt(notes, "Deno floor", () => emptyDenoPss());
      if (floor !== null) addSample(denoFloor, "dualgate", floor / MiB);
      memFigures.push(memIdle, denoFloor);
      for (const h of heldFigures) memFigures.push(h.total, h.per);
    }

    // Interleaved figures: every repetition runs every peer once per figure, order rotating.
    for (let rep = 0; rep < options.reps; rep++) {
      const order = rotate(peers, rep);
      const cpuSingle = new Map<PeerName, { cpu: number; bytes: number; harness: number }>();
      for (
        const [fam, up, down] of [[4, figures.up4, figures.down4], [
          6,
          figures.up6,
          figures.down6,
        ]] as const
      ) {
        for (const [direction, fig] of [["upload", up], ["download", down]] as const) {
          for (const peer of order) {
            if (fam === 6 && v6ok.get(peer.name) === false) continue;
            const s = await attempt(
              notes,
              `${fig.label} ${peer.name} rep ${rep}`,
              () => bulk(peer, direction, options.size, { family: fam, harnessPids }),
            );
            if (!s) continue;
            raw.push({ figure: fig.label, peer: peer.name, rep, ...s });
            addSample(fig, peer.name, s.bytes / MiB / s.seconds);
            const acc = cpuSingle.get(peer.name) ?? { cpu: 0, bytes: 0, harness: 0 };
            acc.cpu += s.proxyCpu;
            acc.harness += s.harnessCpu;
            acc.bytes += s.bytes;
            cpuSingle.set(peer.name, acc);
          }
        }
      }
      for (const [name, acc] of cpuSingle) {
        addSample(figures.harness, name, acc.harness / (acc.bytes / GiB));
        if (name !== "direct") addSample(figures.cpu1, name, acc.cpu / (acc.bytes / GiB));
      }
      const cpuMulti = new Map<PeerName, { cpu: number; bytes: number }>();
      for (
        const [direction, fig] of [["upload", figures.multiUp], [
          "download",
          figures.multiDown,
        ]] as const
      ) {
        for (const peer of order) {
          const s = await attempt(
            notes,
            `${fig.label} ${peer.name} rep ${rep}`,
            () =>
              bulk(peer, direction, options.multiSize, { streams: options.streams, harnessPids }),
          );
          if (!s) continue;
          raw.push({ figure: fig.label, peer: peer.name, rep, ...s });
          addSample(fig, peer.name, s.bytes / MiB / s.seconds);
          const acc = cpuMulti.get(peer.name) ?? { cpu: 0, bytes: 0 };
          acc.cpu += s.proxyCpu;
          acc.bytes += s.bytes;
          cpuMulti.set(peer.name, acc);
        }
      }
      for (const [name, acc] of cpuMulti) {
        if (name !== "direct") addSample(figures.cpuN, name, acc.cpu / (acc.bytes / GiB));
      }
      for (const peer of order) {
        const one = await attempt(
          notes,
          `connection rate at one client ${peer.name} rep ${rep}`,
          () => connectionRate(peer, { durationMs: options.rateMs, concurrency: 1 }),
        );
        if (one && one.latencies.length > 0) {
          addSample(figures.rate1, peer.name, one.rate);
          addSample(figures.p50one, peer.name, percentile(one.latencies, 50));
          addSample(figures.p99one, peer.name, percentile(one.latencies, 99));
          if (peer.pid !== null) {
            addSample(figures.cpuOne, peer.name, one.proxyCpu / (one.latencies.length / 1000));
          }
        }
        const threadsBefore = peer.name.startsWith("dualgate") && peer.pid !== null
          ? threadCpuSeconds(peer.pid)
          : null;
        const s = await attempt(
          notes,
          `connection rate ${peer.name} rep ${rep}`,
          () =>
            connectionRate(peer, {
              durationMs: options.rateMs,
              concurrency: options.concurrency,
            }),
        );
        if (!s) continue;
        if (threadsBefore !== null && peer.pid !== null) {
          // Where dualgate's CPU goes: V8's GC helpers, the main isolate (with `workers`, it
          // only supervises), the isolates that serve clients.
          const after = threadCpuSeconds(peer.pid);
          const used = (name: string) => (after.get(name) ?? 0) - (threadsBefore.get(name) ?? 0);
          const total = [...after.keys()].reduce((sum, name) => sum + used(name), 0);
          if (total > 0) {
            addSample(figures.gcShare, peer.name, (100 * used("V8 DefaultWorke")) / total);
            if (peer.name !== "dualgate") {
              addSample(figures.mainShare, peer.name, (100 * used("deno")) / total);
            }
          }
        }
        if (peer.pid !== null && s.latencies.length > 0) {
          addSample(figures.cpuConn, peer.name, s.proxyCpu / (s.latencies.length / 1000));
        }
        raw.push({
          figure: "rate",
          peer: peer.name,
          rep,
          rate: s.rate,
          errors: s.errors,
          proxyCpu: s.proxyCpu,
          count: s.latencies.length,
          p50: percentile(s.latencies, 50),
          p99: percentile(s.latencies, 99),
        });
        addSample(figures.rate, peer.name, s.rate);
        addSample(figures.p50, peer.name, percentile(s.latencies, 50));
        addSample(figures.p99, peer.name, percentile(s.latencies, 99));
        if (s.errors > 0) rateErrors += ` ${peer.name}(rep ${rep}): ${s.errors} failed;`;
        // Let TIME_WAIT and the proxy's close work settle before the next peer's run.
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      for (const peer of order) {
        if (peer.udp === undefined) continue;
        const open = peer.udp;
        let sent = 0;
        let echoed = 0;
        let cpu = 0;
        for (
          const [fam, rateFig, p50Fig] of [[4, figures.udpRate4, figures.udpP50v4], [
            6,
            figures.udpRate6,
            figures.udpP50v6,
          ]] as const
        ) {
          const s = await attempt(notes, `UDP v4→v${fam} ${peer.name} rep ${rep}`, async () => {
            const path = await open(fam);
            try {
              const rate = await udpRate(peer, path, { durationMs: options.udpMs });
              const trips = await udpRoundTrips(path, { count: options.udpCount });
              return { rate, trips };
            } finally {
              path.close();
            }
          });
          if (!s) continue;
          raw.push({ figure: `udp v${fam}`, peer: peer.name, rep, ...s.rate, lost: s.trips.lost });
          addSample(rateFig, peer.name, s.rate.rate);
          sent += s.rate.sent;
          echoed += s.rate.echoed;
          cpu += s.rate.proxyCpu;
          if (s.trips.latencies.length > 0) {
            addSample(p50Fig, peer.name, percentile(s.trips.latencies, 50));
            if (fam === 4) {
              addSample(figures.udpP99v4, peer.name, percentile(s.trips.latencies, 99));
            }
          }
          if (s.trips.lost > 0) {
            notes.push(`${peer.name} rep ${rep}: ${s.trips.lost} UDP round trips lost (v${fam})`);
          }
        }
        if (sent > 0) addSample(figures.udpLost, peer.name, (100 * (sent - echoed)) / sent);
        if (echoed > 0 && peer.pid !== null) {
          addSample(figures.udpCpu, peer.name, cpu / (echoed / 100_000));
        }
      }
      print(
        `  repetition ${rep + 1}/${options.reps} done at ` +
          `${((performance.now() - began) / 1000).toFixed(0)} s`,
      );
    }
    if (options.held.length > 0) {
      for (const peer of proxies) addSample(memAfter, peer.name, treeMemory(peer.pid!).pss / MiB);
      memFigures.push(memAfter);
    }
    if (rateErrors) notes.push(`connection-rate failures:${rateErrors}`);

    const all = [...Object.values(figures), ...memFigures];
    const names2 = peers.map((p) => p.name);
    print();
    print("## Medians (min–max over repetitions)");
    print();
    print(mediansTable(all, names2));
    print();
    print("## Ratios of medians");
    print();
    print(ratiosTable(all, names2));
    print();
    print("## Issue 15 targets (dualgate)");
    print();
    print(targetsTable(targets(figures, heldFigures, { memIdle, memAfter })));
    print();
    if (options.cap > 0) {
      // In this process, after the peers' figures: a cap's accuracy, not a speed.
      const cap = await attempt(
        notes,
        "cap accuracy",
        () => capAccuracy(options.cap, options.quick ? 2 : 3),
      );
      if (cap) {
        const line = (what: string, measured: number) =>
          `| ${what} | ${(cap.configured / MiB).toFixed(2)} | ${(measured / MiB).toFixed(3)} | ${
            (measured / cap.configured).toFixed(3)
          }× |`;
        print("## Per-user cap accuracy (one user capped each way, one stream)");
        print();
        print("| direction | configured MiB/s | measured MiB/s | measured/configured |");
        print("| --- | ---: | ---: | ---: |");
        print(line("up", cap.up));
        print(line("down", cap.down));
        print();
        raw.push({ figure: "cap", ...cap });
      }
    }
    if (notes.length > 0) {
      print("Notes:");
      for (const note of notes) print(`- ${note}`);
      print();
    }
    print(`Total time ${((performance.now() - began) / 1000).toFixed(0)} s.`);
    if (options.json) {
      await Deno.writeTextFile(
        options.json,
        JSON.stringify({ startedAt, machine: machineLine, options, notes, samples: raw }, null, 1),
      );
    }
  } finally {
    for (const peer of peers) await peer[Symbol.asyncDispose]();
    await Deno.remove(workDir, { recursive: true }).catch(() => {});
  }
  return 0;
}

function targets(
  f: Record<
    | "up4"
    | "down4"
    | "up6"
    | "down6"
    | "rate"
    | "p99"
    | "cpuConn"
    | "p50one"
    | "p99one"
    | "cpuOne"
    | "cpu1"
    | "udpRate4"
    | "udpRate6"
    | "udpP50v4"
    | "udpP50v6",
    Figure
  >,
  held: { n: number; per: Figure }[],
  memory: { memIdle: Figure; memAfter: Figure },
): Target[] {
  const r = (fig: Figure, a: PeerName, b: PeerName) => medianOf(fig, a) / medianOf(fig, b);
  const ratio = (label: string, value: number, bound: number, kind: "min" | "max"): Target => ({
    label,
    value,
    bound,
    kind,
    unit: "×",
  });
  const list: Target[] = [
    ratio(
      "connection rate, many clients, vs microsocks",
      r(f.rate, "dualgate", "microsocks"),
      1,
      "min",
    ),
    ratio(
      "proxy CPU per 1,000 round trips vs microsocks (below)",
      r(f.cpuConn, "dualgate", "microsocks"),
      1,
      "max",
    ),
    ratio(
      "one client: p50 round trip vs microsocks (below)",
      r(f.p50one, "dualgate", "microsocks"),
      1,
      "max",
    ),
    ratio(
      "one client: p99 round trip vs Dante (below)",
      r(f.p99one, "dualgate", "dante"),
      1,
      "max",
    ),
    ratio(
      "one client: CPU per round trip vs under load (below)",
      medianOf(f.cpuOne, "dualgate") / medianOf(f.cpuConn, "dualgate"),
      1.5,
      "max",
    ),
  ];
  for (const h of held) {
    list.push({
      label: `memory per held relayed conn (${h.n})`,
      value: medianOf(h.per, "dualgate"),
      bound: 24,
      kind: "max",
      unit: " KiB",
    });
  }
  list.push(ratio(
    "memory after the run vs fresh (below)",
    medianOf(memory.memAfter, "dualgate") / medianOf(memory.memIdle, "dualgate"),
    1.5,
    "max",
  ));
  for (
    const [fig, what] of [[f.up4, "upload v4"], [f.down4, "download v4"], [f.up6, "upload v6"], [
      f.down6,
      "download v6",
    ]] as const
  ) {
    list.push(ratio(`1 stream ${what} vs Dante`, r(fig, "dualgate", "dante"), 1.5, "min"));
  }
  list.push(
    ratio(
      "CPU per GiB vs Dante, single streams (below)",
      r(f.cpu1, "dualgate", "dante"),
      0.5,
      "max",
    ),
  );
  for (const [fig, what] of [[f.udpRate4, "v4→v4"], [f.udpRate6, "v4→v6"]] as const) {
    list.push(ratio(`UDP datagram rate ${what} vs Dante`, r(fig, "dualgate", "dante"), 1, "min"));
  }
  for (const [fig, what] of [[f.udpP50v4, "v4→v4"], [f.udpP50v6, "v4→v6"]] as const) {
    list.push(
      ratio(`UDP round trip p50 ${what} vs Dante (below)`, r(fig, "dualgate", "dante"), 1, "max"),
    );
  }
  return list;
}

if (import.meta.main) Deno.exit(await main());
