/**
 * The per-user cap's accuracy: a gateway in this process with one user capped each way, a
 * loopback server, and one transfer each way through it; the measured rate against the
 * configured one. Not a speed figure: how close the token bucket keeps to its rate.
 *
 * @module
 */

import { parseConfig } from "../gateway/config/load.ts";
import { startGateway } from "../gateway/mod.ts";
import { formatIp } from "../net/address.ts";
import { socksHandshake } from "../socks5/client.ts";
import { Command } from "../socks5/types.ts";

/** One cap measurement. */
export interface CapSample {
  /** Configured rate, bytes per second. */
  readonly configured: number;
  /** Measured upload rate through the cap (client to server), bytes per second. */
  readonly up: number;
  /** Measured download rate, bytes per second. */
  readonly down: number;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

async function drain(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(256 * 1024);
  let total = 0;
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) total += n;
  return total;
}

/**
 * Moves `rate * seconds` bytes each way through a gateway capping its user at `rate` bytes
 * per second each way, and returns the measured rates (bytes over the time to the last byte).
 */
export async function capAccuracy(rate: number, seconds: number): Promise<CapSample> {
  const size = Math.round(rate * seconds);
  const payload = new Uint8Array(size);
  // First byte 1: the server sends `size` bytes; else it reads to end of stream.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      void (async () => {
        try {
          const first = new Uint8Array(1);
          if ((await conn.read(first)) !== 1) return;
          if (first[0] === 1) await writeAll(conn, payload);
          else await drain(conn);
          await conn.closeWrite();
          await drain(conn);
        } catch {
          /* the client left */
        } finally {
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  const gateway = startGateway(parseConfig(`
listen: ["127.0.0.1:0"]
auth: { users: [{ name: bench, password: bench-pw }] }
limits: { per_user: { bandwidth: { up: ${rate}, down: ${rate} } } }
log: { level: error }
`));
  const endpoint = gateway.endpoints[0]!;
  const open = async () => {
    const conn = await Deno.connect({ hostname: formatIp(endpoint.address), port: endpoint.port });
    await socksHandshake(conn, {
      command: Command.Connect,
      target: { address: { family: "name", name: "127.0.0.1" }, port: listener.addr.port },
    }, { credentials: { username: "bench", password: "bench-pw" } });
    return conn;
  };
  try {
    const down = await open();
    let start = performance.now();
    await writeAll(down, Uint8Array.of(1));
    await down.closeWrite();
    const received = await drain(down);
    const downRate = received / ((performance.now() - start) / 1000);
    down.close();
    const up = await open();
    start = performance.now();
    await writeAll(up, Uint8Array.of(0));
    await writeAll(up, payload);
    await up.closeWrite();
    await drain(up); // the server's end of stream: it has read everything
    const upRate = (size + 1) / ((performance.now() - start) / 1000);
    up.close();
    return { configured: rate, up: upRate, down: downRate };
  } finally {
    listener.close();
    await serving;
    await gateway.stop(0);
  }
}

if (import.meta.main) {
  const rate = Number(Deno.args[0] ?? 8) * 1024 * 1024;
  const sample = await capAccuracy(rate, Number(Deno.args[1] ?? 3));
  const mib = (n: number) => (n / 1024 / 1024).toFixed(3);
  Deno.stdout.writeSync(new TextEncoder().encode(
    `cap ${mib(sample.configured)} MiB/s: up ${mib(sample.up)} (${
      (sample.up / sample.configured).toFixed(3)
    }×), down ${mib(sample.down)} (${(sample.down / sample.configured).toFixed(3)}×)\n`,
  ));
}
