import assert from "node:assert/strict";
import { endpointFromNetAddr } from "../net/address.ts";
import { LineReader, standInRelay, tcpPair, writeText } from "./testing.ts";
import { ExpectationRegistry } from "./expectations.ts";
import { echoAddrTranslatorFactory } from "./example/mod.ts";
import {
  createTranslators,
  formatTranslatorConfig,
  registerTranslator,
  TRANSLATOR_FACTORIES,
  translatorConfigSchema,
} from "./registry.ts";

/** The production plugins and the example, which only tests register. */
const FACTORIES = [...TRANSLATOR_FACTORIES, registerTranslator(echoAddrTranslatorFactory)];
import { runTranslation } from "./run.ts";
import type { ConfiguredTranslator, TranslatorContext } from "./types.ts";

Deno.test("translatorConfigSchema(FACTORIES) fills defaults and names the YAML path of a bad option", () => {
  const schema = translatorConfigSchema(FACTORIES).array();
  const [ftp, echo] = schema.parse([{ type: "ftp" }, { type: "echo-addr", ports: [7] }]);
  assert.deepEqual(ftp?.ports, [21]);
  assert.equal(ftp?.maxLineBytes, 4096);
  assert.equal(ftp?.sameFamily, "pass");
  assert.equal(ftp?.dataTimeoutMs, 60_000);
  assert.equal(echo?.command, "ECHO-ADDR");
  const issue = (entry: unknown) => {
    const result = schema.safeParse([entry]);
    assert.ok(!result.success, `${JSON.stringify(entry)} should be refused`);
    return result.error.issues[0]!;
  };
  assert.deepEqual(issue({ type: "ftp", passive_ports: { from: 2000, to: 1000 } }).path, [
    0,
    "passive_ports",
    "from",
  ]);
  assert.deepEqual(issue({ type: "ftp", active_ports: { from: 0, to: 5000 } }).path, [
    0,
    "active_ports",
    "to",
  ]);
  assert.deepEqual(issue({ type: "ftp", passive_ports: { from: 1, to: 9 } }).path, [
    0,
    "passive_ports",
    "from",
  ]);
  assert.deepEqual(issue({ type: "ftp", data_timeout: 0 }).path, [0, "data_timeout"]);
  assert.deepEqual(issue({ type: "ftp", max_line_bytes: 10 }).path, [0, "max_line_bytes"]);
  assert.deepEqual(issue({ type: "ftp", ports: [0] }).path, [0, "ports", 0]);
  const unknownKey = issue({ type: "ftp", colour: "blue" });
  assert.deepEqual([unknownKey.path, unknownKey.message], [[0, "colour"], "unknown key"]);
  // The typed (camelCase) names are not YAML keys.
  assert.deepEqual(issue({ type: "ftp", dataTimeoutMs: 5000 }).path, [0, "dataTimeoutMs"]);
  const unknownType = issue({ type: "gopher" });
  assert.deepEqual(unknownType.path, [0, "type"]);
  assert.match(unknownType.message, /unknown translator type \(known: ftp, irc-dcc, echo-addr\)/);
});

Deno.test("translatorConfigSchema(FACTORIES) reads snake_case keys and seconds into typed options", () => {
  const [ftp] = translatorConfigSchema(FACTORIES).array().parse([{
    type: "ftp",
    ports: [21, 2121],
    max_line_bytes: 2048,
    same_family: "translate",
    passive_ports: { from: 50000, to: 50100 },
    active_ports: { from: 0, to: 0 },
    data_timeout: 1.5,
    reply_timeout: 10,
    refuse_tls: false,
  }]);
  assert.deepEqual(ftp, {
    type: "ftp",
    ports: [21, 2121],
    maxLineBytes: 2048,
    sameFamily: "translate",
    passivePorts: { from: 50000, to: 50100 },
    activePorts: { from: 0, to: 0 },
    dataTimeoutMs: 1500,
    replyTimeoutMs: 10_000,
    refuseTls: false,
  });
});

Deno.test("formatTranslatorConfig() gives the YAML form, which parses back to the same entry", () => {
  const schema = translatorConfigSchema(FACTORIES);
  for (
    const yaml of [{ type: "ftp", data_timeout: 2.5, refuse_tls: false }, { type: "echo-addr" }]
  ) {
    const entry = schema.parse(yaml);
    const formatted = formatTranslatorConfig(entry, FACTORIES);
    assert.ok(Object.keys(formatted).every((key) => !/[A-Z]/.test(key)), "snake_case keys");
    assert.deepEqual(schema.parse(formatted), entry);
  }
  assert.equal(formatTranslatorConfig(schema.parse({ type: "ftp" }), FACTORIES).data_timeout, 60);
});

Deno.test("createTranslators() builds translators in config order; duplicates are refused", () => {
  const configs = translatorConfigSchema(FACTORIES).array().parse([{ type: "echo-addr" }, {
    type: "ftp",
  }]);
  assert.deepEqual(createTranslators(configs, FACTORIES).map((t) => t.translator.type), [
    "echo-addr",
    "ftp",
  ]);
  assert.throws(
    () => translatorConfigSchema([...TRANSLATOR_FACTORIES, TRANSLATOR_FACTORIES[0]!]),
    /listed twice/,
  );
});

async function connections() {
  const [client, gatewayClient] = await tcpPair("127.0.0.1");
  const [gatewayServer, server] = await tcpPair("::1");
  const ctx: TranslatorContext = {
    id: "r",
    client: endpointFromNetAddr(gatewayClient.remoteAddr),
    clientSideLocal: endpointFromNetAddr(gatewayClient.localAddr),
    server: endpointFromNetAddr(gatewayServer.remoteAddr),
    serverSideLocal: endpointFromNetAddr(gatewayServer.localAddr),
    target: { address: { family: "name", name: "x.example" }, port: 21 },
    user: null,
  };
  return { client, gatewayClient, gatewayServer, server, ctx };
}

const deps = {
  dial: () => Promise.reject(new Error("no dial in this test")),
  check: () => null,
  refused: () => {},
  relay: standInRelay,
  expectations: new ExpectationRegistry(),
};
const runOptions = { deps, relay: standInRelay, idleMs: 60_000, signal: AbortSignal.any([]) };

Deno.test("runTranslation() returns null without reading when nothing claims the port", async () => {
  const c = await connections();
  const translators = createTranslators(
    translatorConfigSchema(FACTORIES).array().parse([{ type: "ftp", ports: [2121] }]),
  );
  assert.equal(
    await runTranslation(translators, c.ctx, c.gatewayClient, c.gatewayServer, {
      ...runOptions,
    }),
    null,
  );
  for (const conn of [c.client, c.gatewayClient, c.gatewayServer, c.server]) conn.close();
});

Deno.test("runTranslation() runs the claiming translator: the echo-addr example answers locally", async () => {
  const c = await connections();
  const translators = createTranslators(
    translatorConfigSchema(FACTORIES).array().parse([{
      type: "echo-addr",
      ports: [21],
      command: "WHOAMI",
    }]),
    FACTORIES,
  );
  const done = runTranslation(translators, c.ctx, c.gatewayClient, c.gatewayServer, {
    ...runOptions,
  });
  const fromGateway = new LineReader(c.client);
  const atServer = new LineReader(c.server);
  await writeText(c.client, "hello\r\nwhoami\r\n");
  assert.equal(await atServer.line(), "hello");
  assert.match((await fromGateway.line())!, /^client=127\.0\.0\.1:\d+ server=\[::1\]:\d+$/);
  await fromGateway.close();
  await atServer.close();
  assert.equal((await done)?.translator, "echo-addr");
});

Deno.test("runTranslation() sniffs the server greeting and relays it either way", async () => {
  for (const claim of [true, false]) {
    const c = await connections();
    const seen: string[] = [];
    const sniffer: ConfiguredTranslator = {
      ports: new Set([21]),
      maxLineBytes: 4096,
      translator: {
        type: "sniffer",
        match: () => "sniff",
        sniff: (bytes) => (seen.push(new TextDecoder().decode(bytes)), claim),
        startSession: () => ({
          onServerLine: async (
            line,
            io,
          ) => (await io.sendToClient(line.text.toUpperCase()), "consumed" as const),
        }),
      },
    };
    await writeText(c.server, "220 banner\r\n");
    const done = runTranslation([sniffer], c.ctx, c.gatewayClient, c.gatewayServer, {
      ...runOptions,
    });
    const fromGateway = new LineReader(c.client);
    assert.equal(await fromGateway.line(), claim ? "220 BANNER" : "220 banner");
    assert.deepEqual(seen, ["220 banner\r\n"]);
    await fromGateway.close();
    c.server.close();
    assert.equal((await done)?.translator, claim ? "sniffer" : null);
  }
});

Deno.test("FTP translator match() claims cross-family sessions; its ports are the configured ones", async () => {
  const c = await connections();
  const [pass, translate] = createTranslators(
    translatorConfigSchema(FACTORIES).array().parse([{ type: "ftp" }, {
      type: "ftp",
      same_family: "translate",
    }]),
  );
  assert.equal(pass!.translator.match(c.ctx), "claim");
  const sameFamily = { ...c.ctx, server: c.ctx.client };
  assert.equal(pass!.translator.match(sameFamily), "decline");
  assert.equal(translate!.translator.match(sameFamily), "claim");
  assert.deepEqual([...pass!.ports], [21]);
  for (const conn of [c.client, c.gatewayClient, c.gatewayServer, c.server]) conn.close();
});

Deno.test("runTranslation() applies ports: a translator without a port check is not run on other ports", async () => {
  const c = await connections();
  let asked = 0;
  const claimsAll: ConfiguredTranslator = {
    ports: new Set([2121]),
    maxLineBytes: 4096,
    translator: {
      type: "claims-all",
      match: () => (asked++, "claim"),
      startSession: () => ({}),
    },
  };
  const other = { ...c.ctx, target: { ...c.ctx.target, port: 21 } };
  assert.equal(
    await runTranslation([claimsAll], other, c.gatewayClient, c.gatewayServer, {
      ...runOptions,
    }),
    null,
  );
  assert.equal(asked, 0, "match() is not asked for a port outside `ports`");
  for (const conn of [c.client, c.gatewayClient, c.gatewayServer, c.server]) conn.close();
});

Deno.test("the example plugin is not registered in production", () => {
  assert.deepEqual(TRANSLATOR_FACTORIES.map((factory) => factory.type), ["ftp", "irc-dcc"]);
  assert.ok(!translatorConfigSchema().safeParse({ type: "echo-addr" }).success);
});
