/**
 * dualgate command line: dispatch only.
 *
 * ```
 * main.ts serve   [--config FILE] [--listen ADDR:PORT]... [--workers N]
 * main.ts check   [--config FILE] [--listen ADDR:PORT]... [--workers N]
 * main.ts resolve NAME [--config FILE]
 * main.ts socksify --gateway URL[,URL...] [--bypass NAME]... [--strategy S] -- COMMAND [ARGS...]
 * main.ts hash-password            (the password on stdin)
 * main.ts version
 * main.ts COMMAND --help
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { ConfigError, formatConfigProblem } from "./gateway/config/errors.ts";
import { type ConfigFlags, configFromFlags, formatConfigYaml } from "./gateway/config/load.ts";
import { hashPassword } from "./gateway/config/password.ts";
import { configWarnings, formatConfigWarning } from "./gateway/config/warnings.ts";
import { egressHostWarnings } from "./gateway/upstream/egress_host.ts";
import { startGateway } from "./gateway/mod.ts";
import { startWorkers } from "./gateway/listen/workers.ts";
import { loadAdminAuth } from "./gateway/observe/admin_auth.ts";
import { logger, setupLogging } from "./gateway/observe/log.ts";
import { formatIp } from "./net/address.ts";
import { errorText } from "./net/error_text.ts";
import { orderAddresses, Resolver } from "./resolver/mod.ts";
import { runSocksify } from "./client/socksify.ts";
import { HOP_STRATEGIES, isHopStrategy } from "./client/selector.ts";

/** The version printed by `main.ts version`. */
export const VERSION: string = denoJson.version;

const STRATEGIES = HOP_STRATEGIES.join("|");

/** A subcommand: synopsis and summary (for the usage), help (`--help`), and what it runs. */
interface Command {
  readonly synopsis: string;
  readonly summary: string;
  readonly help: string;
  readonly run: (args: string[]) => Promise<number>;
}

const CONFIG_FLAGS_HELP =
  `  -c, --config FILE        the YAML config (without it, the embedded default)
  -l, --listen ADDR:PORT   listen here instead of the config's listen list (repeatable;
                           IPv6 bracketed: [2001:db8::10]:1080)
  -w, --workers N          isolates serving clients, instead of the config's workers`;

const COMMANDS: Record<string, Command> = {
  serve: {
    synopsis: "serve   [--config FILE] [--listen ADDR:PORT]... [--workers N]",
    summary: "run the gateway",
    help: `Usage: main.ts serve [--config FILE] [--listen ADDR:PORT]... [--workers N]

Runs the gateway until SIGINT or SIGTERM (then live relays get timeouts.drain seconds).
SIGHUP (or POST /reload on the admin listener) re-reads the config: a valid one is in force
for new connections at once, an invalid one is refused and logged (see "Hot reload").
The flags become part of the config before it is validated: serve runs exactly what
\`main.ts check\` with the same flags prints. A bad config is refused with all its problems.

${CONFIG_FLAGS_HELP}

Without --config and --listen, serve listens on 127.0.0.1:1080 and [::1]:1080, no auth.`,
    run: serve,
  },
  check: {
    synopsis: "check   [--config FILE] [--listen ADDR:PORT]... [--workers N]",
    summary: "validate and print the config",
    help: `Usage: main.ts check [--config FILE] [--listen ADDR:PORT]... [--workers N]

Validates the config that \`main.ts serve\` would run with the same flags and prints it in
its normalised YAML form (secrets redacted), or every problem it has (exit code 1).
Warnings (open proxy, plain-text passwords off loopback, exposed admin listener) go to
stderr and leave the exit code 0.

${CONFIG_FLAGS_HELP}`,
    run: check,
  },
  resolve: {
    synopsis: "resolve NAME [--config FILE]",
    summary: "what the gateway's resolver answers",
    help: `Usage: main.ts resolve NAME [--config FILE]

Resolves NAME with the gateway's resolver (static hosts, hosts file, DNS, as configured) and
prints the A and AAAA answers and the order the gateway would dial them in.

  -c, --config FILE        the YAML config (its resolver section)`,
    run: resolve,
  },
  socksify: {
    synopsis: `socksify --gateway URL[,URL...] [--bypass NAME]... [--strategy ${STRATEGIES}]
                   -- COMMAND [ARGS...]`,
    summary: "run a program through the gateway",
    help: `Usage: main.ts socksify --gateway URL[,URL...] [--bypass NAME]...
                        [--strategy ${STRATEGIES}] -- COMMAND [ARGS...]

Runs COMMAND with its connections sent through the gateway: Deno and Node programs through
the Socks Lib preloads, native programs through proxychains4.

  -g, --gateway URL        socks5://[USER:PASS@]HOST:PORT; several (comma-separated or
                           repeated) are alternatives
      --bypass NAME        connect to NAME directly (repeatable)
      --strategy S         how to pick among the gateways: ${HOP_STRATEGIES.join(", ")}
                           (default failover)`,
    run: socksify,
  },
  "hash-password": {
    synopsis: "hash-password",
    summary: "hash a password from stdin (password_hash)",
    help: `Usage: main.ts hash-password

Reads a password from stdin and prints its salted scrypt hash, the value for
auth.users[].password_hash. On a terminal it asks twice, without echo; otherwise it reads
stdin to the end (one trailing newline is dropped):

  printf '%s' "$PASSWORD" | deno run -A main.ts hash-password

The password is never taken as an argument: arguments are visible to every user in ps.`,
    run: hashPasswordCommand,
  },
  version: {
    synopsis: "version",
    summary: "print the version",
    help: `Usage: main.ts version

Prints the dualgate and Deno versions.`,
    run: (args) => {
      parseArgs({ args, options: {}, strict: true });
      print(`dualgate ${VERSION} (deno ${Deno.version.deno})`);
      return Promise.resolve(0);
    },
  },
};

const USAGE = `dualgate ${VERSION}: a SOCKS5 IPv4/IPv6 gateway (RFC 3089)

Usage:
${
  [...Object.values(COMMANDS), { synopsis: "COMMAND --help", summary: "that command's help" }]
    .map(({ synopsis, summary }) => {
      const lines = `  main.ts ${synopsis}`.split("\n");
      const last = lines.pop()!;
      const end = last.length < 40
        ? `${last.padEnd(40)}${summary}`
        : `${last}\n${" ".repeat(40)}${summary}`;
      return [...lines, end].join("\n");
    }).join("\n")
}

Without --config and --listen, serve listens on 127.0.0.1:1080 and [::1]:1080, no auth.
`;

const encoder = new TextEncoder();

function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`dualgate: ${text}\n`));
}

/** The flags `serve` and `check` share: they shape the config the same way. */
const CONFIG_OPTIONS = {
  config: { type: "string", short: "c" },
  listen: { type: "string", short: "l", multiple: true },
  workers: { type: "string", short: "w" },
} as const;

/** Parses `serve`/`check` arguments into the flags that become part of the config. */
function configFlags(args: string[]): ConfigFlags {
  const { values } = parseArgs({
    args,
    options: CONFIG_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  return {
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
    ...(values.workers !== undefined ? { workers: values.workers } : {}),
  };
}

async function serve(args: string[]): Promise<number> {
  const flags = configFlags(args);
  const config = await configFromFlags(flags);
  await setupLogging(config.log);
  const log = logger("main");
  // A reload reads the file again with the same flags: it runs what `check` would print.
  const loadConfig = () => configFromFlags(flags);
  const pool = config.workers > 1 ? await startWorkers(config, { loadConfig, logging: {} }) : null;
  const gateway = pool ?? startGateway(config, { loadConfig, logging: {} });
  const onHangup = () => {
    log.info("SIGHUP received: reloading the config");
    void gateway.reload();
  };
  Deno.addSignalListener("SIGHUP", onHangup);
  const stopped = Promise.withResolvers<number>();
  const onSignal = (signal: Deno.Signal) => () => {
    log.info("{signal} received: stopping (drain up to {drainMs} ms)", {
      signal,
      drainMs: config.timeouts.drainMs,
    });
    gateway.stop().then(() => stopped.resolve(0), () => stopped.resolve(1));
  };
  // A dead worker stops the rest and exits non-zero: a supervisor restarts the process.
  pool?.failed.then(() => pool.stop().then(() => stopped.resolve(1), () => stopped.resolve(1)));
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = onSignal(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const code = await stopped.promise;
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  Deno.removeSignalListener("SIGHUP", onHangup);
  log.info("stopped");
  return code;
}

async function check(args: string[]): Promise<number> {
  const config = await configFromFlags(configFlags(args));
  // serve reads the admin token file at start: check reads it too, to fail where serve would.
  if (config.admin?.auth) loadAdminAuth(config.admin.auth, () => Promise.resolve("rejected"));
  print(formatConfigYaml(config));
  // Warnings do not fail the check: the config is valid, only riskier than it may look.
  for (const warning of [...configWarnings(config), ...egressHostWarnings(config)]) {
    printError(`warning: ${formatConfigWarning(warning)}`);
  }
  return 0;
}

/** The most a password may be: RFC 1929 carries 1..255 bytes. */
const MAX_PASSWORD_BYTES = 255;

async function hashPasswordCommand(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, options: {}, strict: true, allowPositionals: true });
  if (positionals.length > 0) {
    printError(
      "Cannot hash password: give it on stdin, not as an argument (arguments are visible " +
        "to every user in ps)",
    );
    return 2;
  }
  const password = Deno.stdin.isTerminal()
    ? await readPasswordFromTerminal()
    : await readPasswordFromPipe();
  if (password === null) return 2;
  const bytes = encoder.encode(password).length;
  if (bytes === 0 || bytes > MAX_PASSWORD_BYTES) {
    printError(
      `Cannot hash password: it is ${bytes} bytes; RFC 1929 carries 1 to ${MAX_PASSWORD_BYTES}`,
    );
    return 2;
  }
  print(await hashPassword(password));
  return 0;
}

/** stdin to its end, one trailing newline dropped; `null` (reported) for more than one line. */
async function readPasswordFromPipe(): Promise<string | null> {
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    size += chunk.length;
    // Far more than a password: stop reading rather than buffer a file piped by mistake.
    if (size > 16 * MAX_PASSWORD_BYTES) {
      printError(`Cannot hash password: stdin holds more than ${16 * MAX_PASSWORD_BYTES} bytes`);
      return null;
    }
    text += decoder.decode(chunk, { stream: true });
  }
  text += decoder.decode();
  const password = text.replace(/\r?\n$/, "");
  if (/[\r\n]/.test(password)) {
    printError("Cannot hash password: stdin holds more than one line");
    return null;
  }
  return password;
}

/** Asks twice on the terminal with echo off; `null` (reported) when they differ or on ^C. */
async function readPasswordFromTerminal(): Promise<string | null> {
  const first = await promptHidden("Password: ");
  if (first === null) return null;
  const second = await promptHidden("Again: ");
  if (second === null) return null;
  if (first !== second) {
    printError("Cannot hash password: the two entries differ");
    return null;
  }
  return first;
}

/** One line from the terminal in raw mode (no echo); `null` on ^C. */
async function promptHidden(prompt: string): Promise<string | null> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(64);
  // Echo off before the prompt shows, so that nothing typed after it is ever echoed.
  Deno.stdin.setRaw(true);
  try {
    Deno.stderr.writeSync(encoder.encode(prompt));
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a || byte === 0x04) {
          return new TextDecoder().decode(Uint8Array.from(bytes));
        }
        if (byte === 0x03) {
          printError("Cannot hash password: interrupted");
          return null;
        }
        if (byte === 0x7f || byte === 0x08) bytes.pop();
        else bytes.push(byte);
      }
      // A terminal line is bounded; stop reading a runaway paste.
      if (bytes.length > 4 * MAX_PASSWORD_BYTES) break;
    }
    return new TextDecoder().decode(Uint8Array.from(bytes));
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }
}

async function resolve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    printError("Cannot resolve: give exactly one NAME");
    return 2;
  }
  const config = await configFromFlags(
    values.config !== undefined ? { config: values.config } : {},
  );
  const resolver = new Resolver(config.resolver);
  const answer = await resolver.resolve(positionals[0]!);
  print(`name: ${answer.name}`);
  print(`source: ${answer.source}`);
  for (const address of answer.v6) print(`AAAA ${formatIp(address)}`);
  for (const address of answer.v4) print(`A ${formatIp(address)}`);
  const order = orderAddresses(answer, config.resolver.prefer).map(formatIp);
  print(`dial order (${config.resolver.prefer}): ${order.join(" ") || "(none)"}`);
  return 0;
}

async function socksify(args: string[]): Promise<number> {
  const separator = args.indexOf("--");
  const own = separator < 0 ? args : args.slice(0, separator);
  const command = separator < 0 ? [] : args.slice(separator + 1);
  const { values, positionals } = parseArgs({
    args: own,
    options: {
      gateway: { type: "string", short: "g", multiple: true },
      bypass: { type: "string", multiple: true },
      strategy: { type: "string" },
    },
    strict: true,
    allowPositionals: true,
  });
  const gateways = (values.gateway ?? []).flatMap((g) => g.split(",")).filter((g) => g !== "");
  if (gateways.length === 0) {
    printError("Cannot socksify: --gateway socks5://HOST:PORT is required");
    return 2;
  }
  const strategy = values.strategy ?? "failover";
  if (!isHopStrategy(strategy)) {
    printError(`Cannot socksify: --strategy must be one of ${HOP_STRATEGIES.join(", ")}`);
    return 2;
  }
  const program = [...positionals, ...command];
  if (program.length === 0) {
    printError("Cannot socksify: give the program after --");
    return 2;
  }
  return await runSocksify({
    gateways,
    command: program,
    strategy,
    ...(values.bypass !== undefined ? { bypass: values.bypass } : {}),
  });
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "help" && rest.length > 0) return await main([...rest.slice(0, 1), "--help"]);
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    print(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    printError(`Cannot run: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  const { run, help } = COMMANDS[command]!;
  // `--help` anywhere among the command's own arguments (not after socksify's `--`).
  const separator = rest.indexOf("--");
  const own = separator < 0 ? rest : rest.slice(0, separator);
  if (own.includes("--help") || own.includes("-h")) {
    print(help);
    return 0;
  }
  try {
    return await run(rest);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) printError(formatConfigProblem(problem));
      return 1;
    }
    if (
      error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE")
    ) {
      printError(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    printError(errorText(error));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
