/**
 * The command line as a user runs it: `check`, `resolve`, `version`, usage errors, and `serve`
 * writing JSON log lines.
 */
import assert from "node:assert/strict";
import { MAIN_TS, REPO_ROOT, spawnLocalGateway } from "./helpers/dualgate.ts";
import { echo, readAll, startServer, writeAll } from "./integration/_fixtures.ts";
import { encodeGreeting, encodeRequest, readMethodSelection, readReply } from "../socks5/codec.ts";
import { ExactReader } from "../socks5/exact_reader.ts";

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("`main.ts check` prints the normalised config with secrets redacted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/ok.yaml`,
      'listen: ["192.0.2.10:1080"]\nauth: { users: [{ name: alice, password: change-me }] }\n',
    );
    const ok = await cli("check", "--config", `${dir}/ok.yaml`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /- 192\.0\.2\.10:1080/);
    assert.match(ok.stdout, /password: <redacted>/);
    assert.doesNotMatch(ok.stdout, /change-me/);
    assert.match(ok.stdout, /prefer: happy-eyeballs/);

    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      'rules:\n  - { action: allow, from: ["10.0.0.0/33"] }\n',
    );
    const bad = await cli("check", "--config", `${dir}/bad.yaml`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /rules\[0\]\.from\[0\]: /);
    assert.equal(bad.stdout, "");

    const missing = await cli("check");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--config FILE is required/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts check` warns of plain-text passwords off loopback and an exposed admin listener", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/risky.yaml`,
      'listen: ["192.0.2.10:1080"]\nauth: { users: [{ name: alice, password: change-me }] }\n' +
        'admin: { listen: "0.0.0.0:9090" }\n',
    );
    const risky = await cli("check", "--config", `${dir}/risky.yaml`);
    assert.equal(risky.code, 0, risky.stderr);
    assert.match(risky.stdout, /password: <redacted>/);
    const warnings = risky.stderr.trim().split("\n");
    assert.equal(warnings.length, 2, risky.stderr);
    assert.match(
      warnings[0]!,
      /^dualgate: warning: auth\.users\[0\]\.password: user "alice" has a plain-text password/,
    );
    assert.match(
      warnings[1]!,
      /^dualgate: warning: admin\.listen: 0\.0\.0\.0:9090 is not a loopback/,
    );
    assert.doesNotMatch(risky.stderr, /change-me/);

    await Deno.writeTextFile(
      `${dir}/quiet.yaml`,
      'listen: ["127.0.0.1:1080"]\nauth: { users: [{ name: alice, password: change-me }] }\n',
    );
    const quiet = await cli("check", "--config", `${dir}/quiet.yaml`);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts check` redacts the password of a malformed hop URL in its error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/hop.yaml`,
      'routes: [{ to: ["x.example"], chain: ["socks5://relay:s3cret-pw@198.51.100.20:99999"] }]\n',
    );
    const bad = await cli("check", "--config", `${dir}/hop.yaml`);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /routes\[0\]\.chain\[0\]: "socks5:\/\/relay:<redacted>@198\.51\.100\.20:99999"/,
    );
    assert.doesNotMatch(bad.stderr + bad.stdout, /s3cret/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts check` and `socksify --gateway` never print user info without a ':'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    for (
      const url of [
        "socks5://relay%3AS3cr3tF@host.example:1080/path",
        "socks5://S3cr3tN@host.example:1080/",
      ]
    ) {
      await Deno.writeTextFile(
        `${dir}/hop.yaml`,
        `routes: [{ to: ["x.example"], chain: ["${url}"] }]\n`,
      );
      const bad = await cli("check", "--config", `${dir}/hop.yaml`);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /routes\[0\]\.chain\[0\]: "socks5:\/\/<redacted>@host\.example/);
      assert.doesNotMatch(bad.stderr + bad.stdout, /S3cr3t/i);
    }
    for (
      const url of ["socks5://alice:S3cr3tP@h:0", "socks5://S3cr3tN@h:1080/x", "x://S3cr3tN@h"]
    ) {
      const bad = await cli("socksify", "--gateway", url, "--", "true");
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /Cannot parse gateway URL ".*<redacted>@/);
      assert.doesNotMatch(bad.stderr + bad.stdout, /S3cr3t/i);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts check` warns about a non-loopback PROXY listener without trusted_proxies", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/proxy.yaml`,
      `listen:
  - { address: "192.0.2.10:1080", proxy_protocol: v2 }
  - { address: "192.0.2.10:1081", proxy_protocol: v2, trusted_proxies: ["192.0.2.0/24"] }
  - { address: "127.0.0.1:1082", proxy_protocol: v1 }
`,
    );
    const out = await cli("check", "--config", `${dir}/proxy.yaml`);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /^dualgate: warning: listen\[0\]: 192\.0\.2\.10:1080 takes PROXY/m);
    assert.equal(out.stderr.match(/takes PROXY headers without trusted_proxies/g)?.length, 1);
    assert.match(out.stdout, /trusted_proxies:\n\s+- 192\.0\.2\.0\/24/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts resolve` shows what the resolver answers and the dial order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      'resolver: { hosts_file: "", hosts: { both.example: ["192.0.2.20", "2001:db8::20"] } }\n',
    );
    const r = await cli("resolve", "Both.Example.", "--config", `${dir}/c.yaml`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /source: static/);
    assert.match(r.stdout, /AAAA 2001:db8::20/);
    assert.match(r.stdout, /A 192\.0\.2\.20/);
    assert.match(r.stdout, /dial order \(happy-eyeballs\): 2001:db8::20 192\.0\.2\.20/);
    const literal = await cli("resolve", "[2001:db8::1]");
    assert.match(literal.stdout, /source: literal/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts version`, help and unknown commands", async () => {
  const version = await cli("version");
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^dualgate \d+\.\d+\.\d+ \(deno /);
  const help = await cli("--help");
  assert.equal(help.code, 0);
  for (const command of ["serve", "check", "resolve", "socksify", "version"]) {
    assert.match(help.stdout, new RegExp(`main\\.ts ${command}`));
  }
  const unknown = await cli("frobnicate");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badFlag = await cli("serve", "--no-such-flag");
  assert.equal(badFlag.code, 2);
  const badListen = await cli("serve", "--listen", "2001:db8::1:1080");
  assert.equal(badListen.code, 1);
  assert.match(badListen.stderr, /listen\[0\]: .*given by --listen/);
});

Deno.test("`main.ts serve` writes one JSON line per finished connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  await using server = startServer("::1", echo);
  try {
    await using gateway = await spawnLocalGateway(
      'listen: ["127.0.0.1:0"]\nresolver: { hosts_file: "", hosts: { v6.test.example: ["::1"] } }\nlog: { format: json }\n',
      { dir, listeners: 1 },
    );
    const { hostname, port } = gateway.endpoints[0]!;
    {
      using conn = await Deno.connect({ hostname, port });
      const reader = new ExactReader(conn);
      await writeAll(
        conn,
        Uint8Array.from([
          ...encodeGreeting({ methods: [0] }),
          ...encodeRequest({
            command: 1,
            target: { address: { family: "name", name: "v6.test.example" }, port: server.port },
          }),
        ]),
      );
      assert.equal(await readMethodSelection(reader), 0);
      assert.equal((await readReply(reader)).reply, 0);
      await writeAll(conn, new Uint8Array(10));
      await conn.closeWrite();
      assert.equal((await readAll(conn)).length, 10);
    }
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      line = gateway.stderr().split("\n").filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => (l.properties as Record<string, unknown>)?.outcome === "relayed");
    }
    assert.ok(line, gateway.stderr());
    const properties = line.properties as Record<string, unknown>;
    assert.equal(properties.dest, `v6.test.example:${server.port}`);
    assert.equal(properties.used, `[::1]:${server.port}`);
    assert.equal(properties.families, "v4→v6");
    assert.equal(properties.up, 10);
    assert.equal(properties.down, 10);
    assert.equal(properties.rep, 0);
    assert.equal(properties.command, "connect");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
