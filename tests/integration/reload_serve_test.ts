/**
 * Hot reload of a real `main.ts serve` process with `workers: 2`: SIGHUP and `POST /reload`
 * re-read the file; an invalid file is refused with the problems `main.ts check` prints and the
 * process goes on; a valid one switches every worker, and `/healthz` shows each one's generation.
 */
import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import { MAIN_TS, REPO_ROOT, spawnLocalGateway } from "../helpers/dualgate.ts";
import { httpGet, sampleValue } from "../helpers/http_get.ts";
import { connectTo, echo, readerOf, readSocksReply, startServer, writeAll } from "./_fixtures.ts";

async function until(what: string, condition: () => Promise<boolean>, ms = 20_000) {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Cannot wait: ${what} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function postReload(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/reload`, { method: "POST" });
  return { status: response.status, body: await response.text() };
}

/** CONNECT to 127.0.0.1:`port` through the gateway; the REP code. */
async function connectReply(gateway: { hostname: string; port: number }, port: number) {
  using conn = await connectTo({ address: parseIp(gateway.hostname)!, port: gateway.port });
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(
    conn,
    encodeRequest({ command: 1, target: { address: parseIp("127.0.0.1")!, port } }),
  );
  return (await readSocksReply(reader)).reply;
}

Deno.test("serve with workers: 2 reloads on SIGHUP and POST /reload; a bad file is refused, the process stays", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = startServer("127.0.0.1", echo);
    const config = (deny: string) =>
      `listen: ["127.0.0.1:0"]\nadmin: { listen: "127.0.0.1:0" }\nworkers: 2\n` +
      `rules:\n${deny}  - { action: allow }\n`;
    await using gateway = await spawnLocalGateway(config(""), { dir, listeners: 1 });
    const file = `${dir}/dualgate-local.yaml`;
    let admin = 0;
    await until("admin endpoint logged", () => {
      const match = gateway.stderr().match(/admin endpoint on 127\.0\.0\.1:(\d+)/);
      admin = Number(match?.[1] ?? 0);
      return Promise.resolve(admin > 0);
    });
    const health = async () => (await httpGet({ hostname: "127.0.0.1", port: admin }, "/healthz"));
    const first = await health();
    assert.equal(first.status, 200);
    assert.equal(first.body, "ok\ngeneration 1\nworker 0 generation 1\nworker 1 generation 1\n");
    const endpoint = gateway.endpoints[0]!;
    assert.equal(await connectReply(endpoint, server.port), 0);

    // An invalid file: SIGHUP logs the problems `check` prints; POST /reload answers them.
    const bad = config("").replace("workers: 2", "workers: 2\nlimits: { max_connections: 0 }");
    await Deno.writeTextFile(file, bad);
    const checked = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN_TS, "check", "--config", file],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(checked.code, 1);
    const problem = new TextDecoder().decode(checked.stderr).trim().replace(/^dualgate: /, "");
    assert.match(problem, /^limits\.max_connections: /);
    Deno.kill(gateway.pid, "SIGHUP");
    await until("the refusal logged", () => Promise.resolve(gateway.stderr().includes(problem)));
    const refused = await postReload(admin);
    assert.equal(refused.status, 400);
    assert.equal(refused.body, `refused: ${problem}\n`);
    assert.equal((await health()).body, first.body, "generation 1 stays in force");
    assert.equal(await connectReply(endpoint, server.port), 0, "the process goes on serving");

    // A valid one that denies the echo server's port: every worker switches.
    await Deno.writeTextFile(file, config(`  - { action: deny, ports: [${server.port}] }\n`));
    const accepted = await postReload(admin);
    assert.equal(accepted.status, 200, accepted.body);
    assert.match(accepted.body, /^accepted: generation 2/);
    assert.equal(
      (await health()).body,
      "ok\ngeneration 2\nworker 0 generation 2\nworker 1 generation 2\n",
    );
    // Whichever worker takes them, the next connections see the new rules.
    for (let i = 0; i < 6; i++) assert.equal(await connectReply(endpoint, server.port), 2);

    // SIGHUP with the rule gone again, and the log level raised to warning.
    await Deno.writeTextFile(file, `${config("")}log: { level: warning }\n`);
    Deno.kill(gateway.pid, "SIGHUP");
    await until(
      "generation 3 everywhere",
      async () => (await health()).body.endsWith("1 generation 3\n"),
    );
    assert.match((await health()).body, /^ok\ngeneration 3\nworker 0 generation 3\n/);
    for (let i = 0; i < 6; i++) assert.equal(await connectReply(endpoint, server.port), 0);

    // At warning, an accepted reload's info line is no longer written, in any isolate; the
    // refusal after it (an error) is, so the log is known to have caught up.
    assert.equal((await postReload(admin)).status, 200);
    await Deno.writeTextFile(file, bad);
    assert.equal((await postReload(admin)).status, 400);
    await until(
      "the second refusal logged",
      () => Promise.resolve(gateway.stderr().split(problem).length - 1 >= 3),
    );
    assert.match(gateway.stderr(), /generation 2 in force/, "logged while at info");
    assert.doesNotMatch(gateway.stderr(), /generation 4 in force/);

    const metrics = (await httpGet({ hostname: "127.0.0.1", port: admin }, "/metrics")).body;
    assert.equal(sampleValue(metrics, "dualgate_config_generation"), 4);
    assert.equal(sampleValue(metrics, 'dualgate_reloads_total{result="accepted"}'), 3);
    assert.equal(sampleValue(metrics, 'dualgate_reloads_total{result="refused"}'), 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
