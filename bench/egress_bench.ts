/**
 * `node:net` with `localAddress` (net/node_tcp.ts) against `Deno.connect`: connections per
 * second and bulk throughput over loopback. A short run: `deno run -A bench/egress_bench.ts`.
 *
 * @module
 */

import { connect as nodeConnect } from "node:net";
import { parseIp } from "../net/address.ts";
import { connectFrom } from "../net/node_tcp.ts";

const CONNECTIONS = Number(Deno.env.get("EGRESS_BENCH_CONNECTIONS") ?? 2000);
const BYTES = Number(Deno.env.get("EGRESS_BENCH_MB") ?? 512) * 1024 * 1024;
const LOOPBACK = parseIp("127.0.0.1")!;

type Dial = (port: number) => Promise<Deno.TcpConn>;
const dials: Record<string, Dial> = {
  "Deno.connect": (port) => Deno.connect({ hostname: "127.0.0.1", port }),
  "node:net localAddress": (port) => connectFrom(LOOPBACK, { address: LOOPBACK, port }),
};

/** A server that sends `BYTES` to a connection that writes "B", and closes any other. */
function serve(): Deno.TcpListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const first = new Uint8Array(1);
        if ((await conn.read(first)) === 1) {
          const chunk = new Uint8Array(256 * 1024);
          for (let sent = 0; sent < BYTES; sent += chunk.length) {
            let at = 0;
            while (at < chunk.length) at += await conn.write(chunk.subarray(at));
          }
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return listener;
}

async function connectRate(dial: Dial, port: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CONNECTIONS; i++) {
    const conn = await dial(port);
    conn.close();
  }
  return CONNECTIONS / ((performance.now() - start) / 1000);
}

async function throughput(dial: Dial, port: number): Promise<number> {
  const conn = await dial(port);
  await conn.write(new Uint8Array([0x42]));
  const buffer = new Uint8Array(256 * 1024);
  const start = performance.now();
  let total = 0;
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    total += n;
  }
  conn.close();
  return total / 1024 / 1024 / ((performance.now() - start) / 1000);
}

/** node:net's plain path for comparison: `data` events (a Buffer each), bytes only counted. */
function dataEventThroughput(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = nodeConnect({ host: "127.0.0.1", port });
    let total = 0;
    let start = 0;
    socket.on("connect", () => {
      socket.write(new Uint8Array([0x42]));
      start = performance.now();
    });
    socket.on("data", (chunk: Uint8Array) => {
      total += chunk.length;
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(total / 1024 / 1024 / ((performance.now() - start) / 1000)));
  });
}

if (import.meta.main) {
  const listener = serve();
  const rows: string[] = ["| dial | connections/s | MiB/s (one stream) |", "|---|---|---|"];
  for (const [name, dial] of Object.entries(dials)) {
    const rate = await connectRate(dial, listener.addr.port);
    const mib = await throughput(dial, listener.addr.port);
    rows.push(`| ${name} | ${rate.toFixed(0)} | ${mib.toFixed(0)} |`);
  }
  const events = await dataEventThroughput(listener.addr.port);
  rows.push(`| node:net 'data' events (counted, no wrapper) | — | ${events.toFixed(0)} |`);
  listener.close();
  // deno-lint-ignore no-console
  console.log(rows.join("\n"));
  Deno.exit(0);
}
