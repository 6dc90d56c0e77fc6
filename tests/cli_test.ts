/**
 * The command line as a user runs it: `check`, `resolve`, `hash-password`, `version`, each
 * command's `--help`, usage errors, and `serve` writing JSON log lines.
 */
import assert from "node:assert/strict";
import { MAIN_TS, REPO_ROOT, spawnLocalGateway } from "./helpers/dualgate.ts";
import { echo, readAll, startServer, writeAll } from "./integration/_fixtures.ts";
import { encodeGreeting, encodeRequest, readMethodSelection, readReply } from "../socks5/codec.ts";
import { ExactReader } from "../socks5/exact_reader.ts";
import { verifyPassword } from "../gateway/config/password.ts";
import { HOP_STRATEGIES } from "../client/selector.ts";

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<CliResult> {
  return cliWithInput(null, ...args);
}

/** Runs main.ts with `input` (or nothing) as its stdin, a pipe. */
async function cliWithInput(input: string | null, ...args: string[]): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: input === null ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== null) {
    // The child may stop reading (a refused input) and exit: a broken pipe is its answer.
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input)).catch(() => {});
    await writer.close().catch(() => {});
  }
  const out = await child.output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** The subcommands the top-level usage lists (`main.ts NAME ...` lines). */
async function listedCommands(): Promise<string[]> {
  const help = await cli("--help");
  assert.equal(help.code, 0, help.stderr);
  const names = [...help.stdout.matchAll(/^ {2}main\.ts ([a-z][a-z-]*)/gm)].map((m) => m[1]!);
  assert.ok(names.length >= 6, help.stdout);
  return names;
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

    // Without flags, check prints the config serve would run without flags: the default.
    const bare = await cli("check");
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /- 127\.0\.0\.1:1080\n\s+- "?\[::1\]:1080/);
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
        'admin: { listen: "0.0.0.0:9090", auth: { users: true } }\n',
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
  for (const command of ["serve", "check", "resolve", "socksify", "hash-password", "version"]) {
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

Deno.test("`main.ts COMMAND --help` prints that command's help and exits 0, for every command", async () => {
  for (const command of await listedCommands()) {
    for (const flag of ["--help", "-h"]) {
      const out = await cli(command, flag);
      assert.equal(out.code, 0, `${command} ${flag}: ${out.stderr}`);
      assert.equal(out.stderr, "", `${command} ${flag}`);
      assert.match(out.stdout, new RegExp(`^Usage: main\\.ts ${command}\\b`), out.stdout);
    }
    const viaHelp = await cli("help", command);
    assert.equal(viaHelp.code, 0, viaHelp.stderr);
    assert.match(viaHelp.stdout, new RegExp(`^Usage: main\\.ts ${command}\\b`));
  }
  // --help wins over the command's other arguments, even ones that would fail.
  const serve = await cli("serve", "--config", "/nonexistent/dualgate.yaml", "--help");
  assert.equal(serve.code, 0, serve.stderr);
  assert.match(serve.stdout, /--listen ADDR:PORT/);
  // After socksify's `--`, --help belongs to the program, not to socksify.
  const socksify = await cli(
    "socksify",
    "--gateway",
    "socks5://127.0.0.1:1",
    "--strategy",
    "x",
    "--",
    "prog",
    "--help",
  );
  assert.equal(socksify.code, 2);
  assert.match(socksify.stderr, /--strategy must be one of/);
});

Deno.test("`main.ts socksify --strategy` accepts exactly the config's hop strategies", async () => {
  const bad = await cli(
    "socksify",
    "--gateway",
    "socks5://127.0.0.1:1",
    "--strategy",
    "fastest",
    "--",
    "true",
  );
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    new RegExp(`--strategy must be one of ${HOP_STRATEGIES.join(", ")}$`, "m"),
  );
  const help = await cli("socksify", "--help");
  assert.match(help.stdout, new RegExp(`--strategy ${HOP_STRATEGIES.join("\\|")}`));
  const usage = await cli("--help");
  assert.match(usage.stdout, new RegExp(`--strategy ${HOP_STRATEGIES.join("\\|")}`));
});

Deno.test("`main.ts check --listen` replaces the listen list as `serve --listen` does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/c.yaml`, 'listen: ["127.0.0.1:1080"]\nworkers: 2\n');
    const out = await cli(
      "check",
      "--config",
      `${dir}/c.yaml`,
      "--listen",
      "127.0.0.1:2080",
      "-l",
      "[::1]:2080",
      "--workers",
      "3",
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^listen:\n {2}- 127\.0\.0\.1:2080\n {2}- "?\[::1\]:2080"?\n/);
    assert.doesNotMatch(out.stdout, /:1080/);
    assert.match(out.stdout, /^workers: 3$/m);
    const noFile = await cli("check", "--listen", "127.0.0.1:3080");
    assert.equal(noFile.code, 0, noFile.stderr);
    assert.match(noFile.stdout, /^listen:\n {2}- 127\.0\.0\.1:3080\nauth:/);
    const bad = await cli("check", "--listen", "2001:db8::1:1080");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^dualgate: listen\[0\]: .*\(given by --listen\)$/m);
    assert.equal(bad.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts check` and `serve` report every problem of a bad config at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      `listen: ["192.0.2.10:1080", "192.0.2.10"]
resolver: { prefer: fastest }
timeouts: { idle: -1 }
colour: blue
rules:
  - { action: allow, from: ["10.0.0.0/33"] }
`,
    );
    const expected = [
      /^dualgate: listen\[1\]: /,
      /^dualgate: resolver\.prefer: must be one of /,
      /^dualgate: timeouts\.idle: /,
      /^dualgate: colour: unknown key$/,
      /^dualgate: rules\[0\]\.from\[0\]: /,
    ];
    for (const command of ["check", "serve"]) {
      const out = await cli(command, "--config", `${dir}/bad.yaml`, "--listen", "2001:db8::1:1080");
      assert.equal(out.code, 1, `${command}: ${out.stderr}`);
      assert.equal(out.stdout, "");
      const lines = out.stderr.trimEnd().split("\n");
      // --listen replaced the file's list: its bad address is reported, with the flag named.
      assert.match(lines[0]!, /^dualgate: listen\[0\]: .*\(given by --listen\)$/, out.stderr);
      const rest = lines.slice(1);
      assert.equal(rest.length, expected.length - 1, out.stderr);
      for (const pattern of expected.slice(1)) {
        assert.ok(rest.some((line) => pattern.test(line)), `${command}: ${pattern}\n${out.stderr}`);
      }
      const file = await cli(command, "--config", `${dir}/bad.yaml`);
      assert.equal(file.code, 1);
      const fileLines = file.stderr.trimEnd().split("\n");
      assert.equal(fileLines.length, expected.length, file.stderr);
      for (const pattern of expected) {
        assert.ok(fileLines.some((line) => pattern.test(line)), `${pattern}\n${file.stderr}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts hash-password` hashes the password piped on stdin; the hash verifies", async () => {
  const out = await cliWithInput("correct horse battery\n", "hash-password");
  assert.equal(out.code, 0, out.stderr);
  const hash = out.stdout.trim();
  assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.equal(out.stdout, `${hash}\n`);
  assert.doesNotMatch(out.stdout + out.stderr, /correct horse/);
  const user = { name: "alice", passwordHash: hash };
  assert.equal(await verifyPassword("correct horse battery", user), true);
  assert.equal(await verifyPassword("correct horse battery\n", user), false);
  assert.equal(await verifyPassword("correct horse", user), false);
  // Without a trailing newline, the same.
  const bare = await cliWithInput("pw", "hash-password");
  assert.equal(bare.code, 0, bare.stderr);
  assert.equal(await verifyPassword("pw", { name: "a", passwordHash: bare.stdout.trim() }), true);
  // The printed value is a valid password_hash for the config.
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      `auth: { users: [{ name: alice, password_hash: "${hash}" }] }\n`,
    );
    const checked = await cli("check", "--config", `${dir}/c.yaml`);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /password_hash: scrypt\$16384\$8\$1\$<redacted>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`main.ts hash-password` refuses a password in argv, an empty one, and several lines", async () => {
  const argv = await cliWithInput("", "hash-password", "s3cret-pw");
  assert.equal(argv.code, 2);
  assert.equal(argv.stdout, "");
  assert.match(argv.stderr, /not as an argument .*ps/);
  for (const input of ["", "\n", "a\nb\n", "x".repeat(256), "x\n".repeat(100_000)]) {
    const out = await cliWithInput(input, "hash-password");
    assert.equal(out.code, 2, JSON.stringify(input));
    assert.equal(out.stdout, "");
    assert.match(out.stderr, /^dualgate: Cannot hash password: /);
  }
});

Deno.test("`main.ts hash-password` on a terminal asks twice without echo", async () => {
  // script(1) (bsdutils, Essential on Debian) gives the command a pseudo-terminal.
  const command = [Deno.execPath(), "run", "--allow-all", MAIN_TS, "hash-password"]
    .map((word) => `'${word}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const waitFor = async (text: string) => {
    while (!seen.includes(text)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the terminal closed before "${text}": ${seen}`);
      seen += decoder.decode(value, { stream: true });
    }
  };
  await waitFor("Password: ");
  await writer.write(new TextEncoder().encode("t3rminal-pw\r"));
  await waitFor("Again: ");
  await writer.write(new TextEncoder().encode("t3rminal-pw\r"));
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
  }
  await writer.close().catch(() => {});
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0, seen);
  assert.doesNotMatch(seen, /t3rminal/);
  const hash = seen.match(/scrypt\$[^\s]+/)?.[0];
  assert.ok(hash, seen);
  assert.equal(await verifyPassword("t3rminal-pw", { name: "alice", passwordHash: hash }), true);
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

Deno.test("`main.ts check` reads admin.auth.token_file as serve would, naming the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/admin.yaml`,
      `admin: { listen: "127.0.0.1:9090", auth: { token_file: ${dir}/missing.token } }\n`,
    );
    const missing = await cli("check", "--config", `${dir}/admin.yaml`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^dualgate: admin\.auth\.token_file: cannot read /);
    await Deno.writeTextFile(`${dir}/missing.token`, "a-token\n");
    const present = await cli("check", "--config", `${dir}/admin.yaml`);
    assert.equal(present.code, 0, present.stderr);
    assert.match(present.stdout, /token_file: .*missing\.token/);
    assert.doesNotMatch(present.stdout + present.stderr, /a-token/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
