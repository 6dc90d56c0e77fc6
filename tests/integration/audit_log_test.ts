/**
 * The audit log of a real `main.ts serve` process: one JSON line per finished connection,
 * SIGUSR1 after a rename (logrotate) sends later lines to a new file, and SIGTERM writes the
 * lines still pending in the batch before the process exits.
 */
import assert from "node:assert/strict";
import { socksHandshake } from "../../socks5/client.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command } from "../../socks5/types.ts";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import { readAll, startServer, startTestGateway, writeAll } from "./_fixtures.ts";
import { parseConfig } from "../../gateway/config/load.ts";

async function connectThrough(port: number, name: string, target: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await socksHandshake(conn, {
      command: Command.Connect,
      target: { address: { family: "name", name }, port: target },
    }, { credentials: { username: "alice", password: "a-secret" } });
    await writeAll(conn, new TextEncoder().encode("hello"));
    await conn.closeWrite();
    await readAll(conn);
    return 0;
  } catch (error) {
    if (error instanceof SocksReplyError) return error.reply;
    throw error;
  } finally {
    conn.close();
  }
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`never: ${what}`);
}

const linesOf = async (path: string) =>
  (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));

Deno.test("log.audit.file: JSON lines, reopened on SIGUSR1 after a rename, flushed on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-audit-" });
  await using server = startServer("127.0.0.1", async (conn) => {
    const got = await readAll(conn);
    await writeAll(conn, got);
  });
  const path = `${dir}/audit.log`;
  const gateway = await spawnLocalGateway(
    `listen: ["127.0.0.1:0"]
auth: { users: [{ name: alice, password: a-secret }] }
resolver: { hosts: { svc.audit.example: ["127.0.0.1"] }, hosts_file: "" }
rules:
  - { action: allow, to: ["svc.audit.example"] }
log: { audit: { file: "${path}" } }
`,
    { dir, listeners: 1 },
  );
  try {
    const port = gateway.endpoints[0]!.port;
    assert.equal(await connectThrough(port, "svc.audit.example", server.port), 0);
    assert.equal(await connectThrough(port, "127.0.0.1", 9), 2);
    await until(async () => (await linesOf(path)).length === 2, "two lines in the audit log");
    const [relayed, refused] = await linesOf(path);
    assert.equal(relayed.user, "alice");
    assert.equal(relayed.requested, `svc.audit.example:${server.port}`);
    assert.equal(relayed.connected, `127.0.0.1:${server.port}`);
    assert.equal(relayed.families, "v4-v4");
    assert.equal(relayed.route, "direct");
    assert.equal(relayed.up, 5);
    assert.equal(relayed.down, 5);
    assert.equal(relayed.reply, 0);
    assert.equal(typeof relayed.durationMs, "number");
    assert.equal(refused.reply, 2);
    assert.equal(refused.connected, null);

    // logrotate: rename, then SIGUSR1.
    await Deno.rename(path, `${path}.1`);
    Deno.kill(gateway.pid, "SIGUSR1");
    await until(() => gateway.stderr().includes("reopened"), "the reopen log line");
    assert.equal(await connectThrough(port, "svc.audit.example", server.port), 0);
    // SIGTERM at once: the line is still in its batch (200 ms), and must reach the file.
    Deno.kill(gateway.pid, "SIGTERM");
    assert.equal((await gateway.status).code, 0);
    assert.equal((await linesOf(`${path}.1`)).length, 2);
    const fresh = await linesOf(path);
    assert.equal(fresh.length, 1);
    assert.equal(fresh[0].requested, `svc.audit.example:${server.port}`);
    // The log lines on stderr are still written.
    assert.match(
      gateway.stderr(),
      /relayed 127\.0\.0\.1:\d+ user=alice connect svc\.audit\.example/,
    );
  } finally {
    await gateway[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log.audit.file: a reload to another file sends new lines there; a file that cannot be opened fails the reload", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-audit-reload-" });
  await using server = startServer("127.0.0.1", async (conn) => {
    const got = await readAll(conn);
    await writeAll(conn, got);
  });
  const yamlOf = (file: string) =>
    `listen: ["127.0.0.1:0"]
auth: { users: [{ name: alice, password: a-secret }] }
resolver: { hosts: { svc.audit.example: ["127.0.0.1"] }, hosts_file: "" }
rules:
  - { action: allow, to: ["svc.audit.example"] }
log: { audit: { file: "${file}" } }
`;
  let yaml = yamlOf(`${dir}/a.log`);
  await using gw = startTestGateway(yaml, {
    loadConfig: () => Promise.resolve(parseConfig(yaml)),
  });
  const port = gw.endpoint(4).port;
  assert.equal(await connectThrough(port, "svc.audit.example", server.port), 0);
  yaml = yamlOf(`${dir}/missing/b.log`);
  assert.equal((await gw.gateway.reload()).result, "failed");
  assert.equal(gw.gateway.generation, 1);
  yaml = yamlOf(`${dir}/b.log`);
  assert.equal((await gw.gateway.reload()).result, "accepted");
  assert.equal(gw.gateway.generation, 2);
  // The old file got its pending line when the reload closed it.
  assert.equal((await linesOf(`${dir}/a.log`)).length, 1);
  assert.equal(await connectThrough(port, "svc.audit.example", server.port), 0);
  await gw.gateway.stop(0);
  assert.equal((await linesOf(`${dir}/a.log`)).length, 1);
  assert.equal((await linesOf(`${dir}/b.log`)).length, 1);
  await Deno.remove(dir, { recursive: true });
});
