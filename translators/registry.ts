/**
 * The translator registry: one explicit, static list of plugins (so `deno compile` bundles
 * them), the zod schema of `translators:` config entries built from it, and the step that
 * turns validated entries into translators.
 *
 * @module
 */

import { z } from "zod";
import { echoAddrTranslatorFactory } from "./example/mod.ts";
import { ftpTranslatorFactory } from "./ftp/mod.ts";
import { DEFAULT_MAX_LINE_BYTES } from "./line_session.ts";
import type { Translator, TranslatorConfig, TranslatorFactory } from "./types.ts";

/** A factory with its option type erased, as held in the registry. */
export type RegisteredTranslatorFactory = Omit<TranslatorFactory, "create"> & {
  /** Builds a translator from an entry validated by this factory's schema. */
  create(config: TranslatorConfig): Translator;
};

/** Erases a factory's option type; sound because `create` only sees what its schema output. */
export function registerTranslator<Options>(
  factory: TranslatorFactory<Options>,
): RegisteredTranslatorFactory {
  return factory as unknown as RegisteredTranslatorFactory;
}

/** Every translator plugin, in one list. Add a new plugin here (static import above). */
export const TRANSLATOR_FACTORIES: readonly RegisteredTranslatorFactory[] = [
  registerTranslator(ftpTranslatorFactory),
  registerTranslator(echoAddrTranslatorFactory),
];

const portSchema = z.number().int().min(1).max(65535);

/**
 * Builds the schema of one `translators:` entry: `type`, the common options (`ports`,
 * `maxLineBytes`) and the plugin's own, all unknown keys refused.
 *
 * @throws {TypeError} when two factories share a type.
 */
export function translatorConfigSchema(
  factories: readonly RegisteredTranslatorFactory[] = TRANSLATOR_FACTORIES,
): z.ZodType<TranslatorConfig> {
  const seen = new Set<string>();
  const variants = factories.map((factory) => {
    if (seen.has(factory.type)) {
      throw new TypeError(`Cannot register translator: type ${factory.type} is listed twice`);
    }
    seen.add(factory.type);
    return z.strictObject({
      type: z.literal(factory.type),
      ports: z.array(portSchema).min(1).default([...factory.defaultPorts]),
      maxLineBytes: z.number().int().min(512).max(65536).default(DEFAULT_MAX_LINE_BYTES),
    }).extend(factory.optionsSchema.shape);
  });
  const types = factories.map((factory) => factory.type).join(", ");
  return z.discriminatedUnion(
    "type",
    variants as unknown as [z.ZodObject<{ type: z.ZodLiteral<string> }>],
    { error: () => `unknown translator type (known: ${types})` },
  ) as unknown as z.ZodType<TranslatorConfig>;
}

/**
 * Creates the configured translators, in config order (first match wins at run time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTranslators, translatorConfigSchema } from "./registry.ts";
 *
 * const configs = translatorConfigSchema().array().parse([{ type: "ftp", ports: [21] }]);
 * const [ftp] = createTranslators(configs);
 * assert.equal(ftp?.type, "ftp");
 * ```
 *
 * @throws {TypeError} for an entry whose type no factory has.
 */
export function createTranslators(
  configs: readonly TranslatorConfig[],
  factories: readonly RegisteredTranslatorFactory[] = TRANSLATOR_FACTORIES,
): Translator[] {
  return configs.map((config, index) => {
    const factory = factories.find((candidate) => candidate.type === config.type);
    if (!factory) {
      throw new TypeError(
        `Cannot create translator: translators[${index}].type ${config.type} is unknown`,
      );
    }
    return factory.create(config);
  });
}
