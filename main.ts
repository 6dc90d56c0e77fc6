/**
 * dualgate command line: dispatch only.
 *
 * ```
 * main.ts serve   [--config FILE] [--listen ADDR:PORT]... [--workers N]
 * main.ts check   --config FILE
 * main.ts resolve NAME [--config FILE]
 * main.ts socksify --gateway URL[,URL...] [--bypass NAME]... -- COMMAND [ARGS...]
 * main.ts version
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { ConfigError } from "./gateway/config/errors.ts";
import { configFromFlags, formatConfigYaml } from "./gateway/config/load.ts";
import { startGateway } from "./gateway/mod.ts";
import { proxyTrustWarnings } from "./gateway/proxy_trust.ts";
import { startWorkers } from "./gateway/workers.ts";
import { logger, setupLogging } from "./gateway/observe/log.ts";
import { formatIp } from "./net/address.ts";
import { orderAddresses, Resolver } from "./resolver/mod.ts";
import { runSocksify } from "./client/socksify.ts";

/** The version printed by `main.ts version`. */
export const VERSION: string = denoJson.version;

const USAGE = `dualgate ${VERSION}: a SOCKS5 IPv4/IPv6 gateway (RFC 3089)

Usage:
  main.ts serve   [--config FILE] [--listen ADDR:PORT]... [--workers N]
                                                            run the gateway (on N isolates)
  main.ts check   --config FILE                             validate and print the config
  main.ts resolve NAME [--config FILE]                      what the gateway's resolver answers
  main.ts socksify --gateway socks5://[USER:PASS@]HOST:PORT[,URL...] [--bypass NAME]...
                   [--strategy failover|round-robin|random]
                   -- COMMAND [ARGS...]                      run a program through the gateway
  main.ts version                                           print the version

Without --config and --listen, serve listens on 127.0.0.1:1080 and [::1]:1080, no auth.
`;

const encoder = new TextEncoder();

function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`dualgate: ${text}\n`));
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      listen: { type: "string", short: "l", multiple: true },
      workers: { type: "string", short: "w" },
    },
    strict: true,
    allowPositionals: false,
  });
  const config = await configFromFlags({
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
    ...(values.workers !== undefined ? { workers: values.workers } : {}),
  });
  await setupLogging(config.log);
  const log = logger("main");
  const pool = config.workers > 1 ? await startWorkers(config) : null;
  const gateway = pool ?? startGateway(config);
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
  log.info("stopped");
  return code;
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" } },
    strict: true,
  });
  if (values.config === undefined) {
    printError("Cannot check: --config FILE is required");
    return 2;
  }
  const config = await configFromFlags({ config: values.config });
  for (const warning of proxyTrustWarnings(config)) printError(`warning: ${warning}`);
  print(formatConfigYaml(config));
  return 0;
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
  if (strategy !== "failover" && strategy !== "round-robin" && strategy !== "random") {
    printError(`Cannot socksify: --strategy must be failover, round-robin or random`);
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

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve,
  check,
  resolve,
  socksify,
  version: () => {
    print(`dualgate ${VERSION} (deno ${Deno.version.deno})`);
    return Promise.resolve(0);
  },
};

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    print(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    printError(`Cannot run: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    if (error instanceof ConfigError) {
      printError(error.message);
      return 1;
    }
    if (
      error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE")
    ) {
      printError(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    printError(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
