/**
 * Protocol translators: the plugin interface (`types.ts`), the registry of plugins, the line
 * loop, the data-channel broker helper and the expectation table the gateway consults.
 *
 * The gateway's whole part:
 *
 * 1. config: embed `translatorConfigSchema()` for `translators:`; then `createTranslators()`.
 * 2. once: `const expectations = new ExpectationRegistry()`.
 * 3. every CONNECT, before dialing: `expectations.take({ address, user }, target)` (the
 *    client's address and RFC 1929 user, `null` without authentication); if it returns
 *    an {@linkcode ExpectedConnection}, use `open(signal)` instead of the dial and relay with
 *    its `signal`.
 * 4. after a CONNECT succeeds: `const result = await runTranslation(translators, ctx, client,
 *    server, { deps, relay, idleMs, signal })`; `null`: no translator took it, relay as usual;
 *    otherwise the session is over and `result` ({@linkcode TranslationResult}) has its bytes,
 *    its end and the translator's type for the connection record. `relay` is the gateway's
 *    core relay, used for a session a translator hands back (`io.detach()`, `"passthrough"`).
 *
 * Plugin authors: `types.ts` is the contract, `README.md` the guide, `testing.ts` the test
 * doubles (context, io, broker, a stand-in relay, loopback pairs, a line reader).
 *
 * @example Writing a translator
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import type { LineVerdict, TranslatorFactory } from "./types.ts";
 * import { registerTranslator, translatorConfigSchema, createTranslators } from "./registry.ts";
 *
 * const upperBanner: TranslatorFactory<{ prefix: string }> = {
 *   type: "upper-banner",
 *   description: "Upper-cases server lines",
 *   defaultPorts: [25],
 *   optionsSchema: z.strictObject({ prefix: z.string().default("") }),
 *   create: (options) => ({
 *     type: "upper-banner",
 *     match: () => "claim", // only asked on the configured ports
 *     startSession: () => ({
 *       async onServerLine(line, io): Promise<LineVerdict> {
 *         await io.sendToClient(options.prefix + line.text.toUpperCase());
 *         return "consumed";
 *       },
 *     }),
 *   }),
 * };
 *
 * const factories = [registerTranslator(upperBanner)];
 * const configs = translatorConfigSchema(factories).array().parse([{ type: "upper-banner" }]);
 * const [translator] = createTranslators(configs, factories);
 * assert.equal(translator?.translator.type, "upper-banner");
assert.deepEqual([...translator!.ports], [25]);
 * ```
 *
 * @module
 */

export type * from "./types.ts";
export { createDataChannelBroker, DEFAULT_CONNECT_TIMEOUT_MS } from "./broker.ts";
export {
  bridgeDataChannel,
  type BridgeOptions,
  DataChannelSession,
  type PortRange,
  portRangeSchema,
  serveDataListener,
  type ServeDataListenerOptions,
  TaskSet,
} from "./data_channel.ts";
export {
  factoryAcrossFamilies,
  matchAcrossFamilies,
  type SameFamily,
  sameFamilySchema,
  translatorAcrossFamilies,
  type YamlKey,
  type YamlKeys,
  type YamlMapping,
  yamlMapping,
} from "./plugin_options.ts";
export { ExpectationRegistry, type ExpectationRegistryOptions } from "./expectations.ts";
export { HandBackStream, type PendingRead } from "./hand_back.ts";
export {
  DEFAULT_MAX_LINE_BYTES,
  type LineSessionEnd,
  type LineSessionOptions,
  type LineSessionResult,
  runLineSession,
} from "./line_session.ts";
export {
  createTranslators,
  formatTranslatorConfig,
  type RegisteredTranslatorFactory,
  registerTranslator,
  TRANSLATOR_FACTORIES,
  translatorConfigSchema,
} from "./registry.ts";
export { runTranslation, type RunTranslationOptions, type TranslationResult } from "./run.ts";
