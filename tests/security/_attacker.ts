/**
 * An attacking SOCKS client, run inside a client namespace by the security tests
 * (`deno run --allow-net tests/security/_attacker.ts JSON`); prints one JSON line of results.
 * Imports only local files (no registry), so that it runs in a namespace without one.
 *
 * Plans:
 * - `{ "plan": "proxy", host, port, header, target: [ip, port] }`: sends `header` (text), a
 *   no-auth greeting and a CONNECT to the IPv4 `target` in one write; reports every byte the
 *   gateway sent (the method selection and reply, or fewer bytes when it closes).
 * - `{ "plan": "logins", host, port, count, username, right, header? }`: opens `count`
 *   connections, each sending `header` (if any) and a username/password greeting; once every
 *   one has its method selection, all send credentials at once: wrong passwords, `right` last.
 *   Reports the method selections and the RFC 1929 replies (-1: closed).
 *
 * @module
 */

import { writeAll } from "../../net/io.ts";

interface Plan {
  plan: "proxy" | "logins";
  host: string;
  port: number;
  header?: string;
  target?: [string, number];
  count?: number;
  username?: string;
  right?: string;
}

const plan = JSON.parse(Deno.args[0] ?? "{}") as Plan;
const encoder = new TextEncoder();

/** Reads exactly `n` bytes, or fewer when the connection ends (or resets). */
async function readUpTo(conn: Deno.Conn, n: number): Promise<number[]> {
  const out: number[] = [];
  const buffer = new Uint8Array(n);
  while (out.length < n) {
    let got: number | null;
    try {
      got = await conn.read(buffer.subarray(0, n - out.length));
    } catch {
      break;
    }
    if (got === null) break;
    out.push(...buffer.subarray(0, got));
  }
  return out;
}

async function proxy(): Promise<unknown> {
  const conn = await Deno.connect({ hostname: plan.host, port: plan.port });
  const [ip, port] = plan.target!;
  const request = [5, 1, 0, 1, ...ip.split(".").map(Number), port >> 8, port & 0xff];
  const bytes = new Uint8Array([...encoder.encode(plan.header ?? ""), 5, 1, 0, ...request]);
  await writeAll(conn, bytes).catch(() => {});
  // The method selection and an IPv4 reply: 12 bytes, fewer when the gateway closes.
  const received = await readUpTo(conn, 12);
  conn.close();
  return { received };
}

async function logins(): Promise<unknown> {
  const count = plan.count ?? 1;
  const conns: Deno.TcpConn[] = [];
  const methods: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const conn = await Deno.connect({ hostname: plan.host, port: plan.port });
      conns.push(conn);
      await writeAll(conn, new Uint8Array([...encoder.encode(plan.header ?? ""), 5, 1, 2]));
    }
    for (const conn of conns) {
      const selection = await readUpTo(conn, 2);
      methods.push(selection.length === 2 ? selection[1]! : -1);
    }
    const user = encoder.encode(plan.username ?? "alice");
    const replies = await Promise.all(conns.map(async (conn, i) => {
      if (methods[i] !== 2) return -1;
      const password = encoder.encode(i === count - 1 ? plan.right ?? "" : `wrong-${i}`);
      await writeAll(
        conn,
        new Uint8Array([1, user.length, ...user, password.length, ...password]),
      ).catch(() => {});
      const reply = await readUpTo(conn, 2);
      return reply.length === 2 ? reply[1]! : -1;
    }));
    return { methods, replies };
  } finally {
    for (const conn of conns) conn.close();
  }
}

const result = plan.plan === "proxy" ? await proxy() : await logins();
Deno.stdout.writeSync(encoder.encode(JSON.stringify(result) + "\n"));
