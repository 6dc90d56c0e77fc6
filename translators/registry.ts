/**
 * The translator registry: one explicit, static list of plugins (so `deno compile` bundles
 * them), the zod schema of `translators:` config entries built from it, and the step that
 * turns validated entries into translators.
 *
 * @module
 */

import { z } from "zod";
import { ftpTranslatorFactory } from "./ftp/mod.ts";
import { ircDccTranslatorFactory } from "./irc_dcc/mod.ts";
import { DEFAULT_MAX_LINE_BYTES } from "./line_session.ts";
import type {
  ConfiguredTranslator,
  Translator,
  TranslatorConfig,
  TranslatorFactory,
} from "./types.ts";

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

/**
 * Every production translator plugin, in one list. Add a new plugin here (static import
 * above). The example plugin (`example/`) is not listed: tests pass it in `factories`.
 */
export const TRANSLATOR_FACTORIES: readonly RegisteredTranslatorFactory[] = [
  registerTranslator(ftpTranslatorFactory),
  registerTranslator(ircDccTranslatorFactory),
];

const COMMON_KEYS = new Set(["type", "ports", "max_line_bytes"]);

function commonSchema(factory: RegisteredTranslatorFactory) {
  return z.strictObject({
    ports: z.array(
      z.number().int("must be an integer").min(1, "must be 1..65535").max(
        65535,
        "must be 1..65535",
      ),
    ).min(1, "must list at least one port").default([...factory.defaultPorts]),
    max_line_bytes: z.number().int("must be an integer")
      .min(512, "must be 512..65536").max(65536, "must be 512..65536")
      .default(factory.defaultMaxLineBytes ?? DEFAULT_MAX_LINE_BYTES),
  });
}

/** Re-raises a nested parse's issues at the current path, unknown keys one by one. */
function forwardIssues(issues: readonly z.core.$ZodIssue[], ctx: z.core.$RefinementCtx): void {
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        ctx.addIssue({ code: "custom", message: "unknown key", path: [...issue.path, key] });
      }
    } else ctx.addIssue({ code: "custom", message: issue.message, path: [...issue.path] });
  }
}

/**
 * Builds the schema of one `translators:` entry in its YAML form: `type`, the common keys
 * (`ports`, `max_line_bytes`) and the plugin's own (snake_case), all unknown keys refused.
 * The output is the typed {@linkcode TranslatorConfig} (`maxLineBytes`, the plugin's typed
 * options); issue paths name the YAML keys (`passive_ports.from`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { translatorConfigSchema } from "./registry.ts";
 *
 * const [ftp] = translatorConfigSchema().array().parse([{ type: "ftp", max_line_bytes: 2048 }]);
 * assert.equal(ftp?.maxLineBytes, 2048);
 * ```
 *
 * @throws {TypeError} when two factories share a type.
 */
export function translatorConfigSchema(
  factories: readonly RegisteredTranslatorFactory[] = TRANSLATOR_FACTORIES,
): z.ZodType<TranslatorConfig> {
  const byType = new Map<string, RegisteredTranslatorFactory>();
  for (const factory of factories) {
    if (byType.has(factory.type)) {
      throw new TypeError(`Cannot register translator: type ${factory.type} is listed twice`);
    }
    byType.set(factory.type, factory);
  }
  const types = factories.map((factory) => factory.type).join(", ");
  return z.unknown().transform((value, ctx): TranslatorConfig => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      ctx.addIssue({ code: "custom", message: `must be a mapping with a type (${types})` });
      return z.NEVER;
    }
    const entry = value as Record<string, unknown>;
    const factory = typeof entry.type === "string" ? byType.get(entry.type) : undefined;
    if (!factory) {
      ctx.addIssue({
        code: "custom",
        message: `unknown translator type (known: ${types})`,
        path: ["type"],
      });
      return z.NEVER;
    }
    const common: Record<string, unknown> = {};
    const own: Record<string, unknown> = {};
    for (const [key, option] of Object.entries(entry)) {
      if (key !== "type") (COMMON_KEYS.has(key) ? common : own)[key] = option;
    }
    const commonResult = commonSchema(factory).safeParse(common);
    const ownResult = factory.optionsSchema.safeParse(own);
    if (!commonResult.success) forwardIssues(commonResult.error.issues, ctx);
    if (!ownResult.success) forwardIssues(ownResult.error.issues, ctx);
    if (!commonResult.success || !ownResult.success) return z.NEVER;
    return {
      ...(ownResult.data as Record<string, unknown>),
      type: factory.type,
      ports: commonResult.data.ports,
      maxLineBytes: commonResult.data.max_line_bytes,
    };
  });
}

/**
 * The YAML form of a validated entry (snake_case keys, seconds), for `main.ts check`: it
 * parses back to the same entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTranslatorConfig, translatorConfigSchema } from "./registry.ts";
 *
 * const schema = translatorConfigSchema();
 * const entry = schema.parse({ type: "ftp", data_timeout: 5 });
 * assert.equal(formatTranslatorConfig(entry).data_timeout, 5);
 * assert.deepEqual(schema.parse(formatTranslatorConfig(entry)), entry);
 * ```
 */
export function formatTranslatorConfig(
  config: TranslatorConfig,
  factories: readonly RegisteredTranslatorFactory[] = TRANSLATOR_FACTORIES,
): Record<string, unknown> {
  const { type, ports, maxLineBytes, ...options } = config;
  const factory = factories.find((candidate) => candidate.type === type);
  return {
    type,
    ports: [...ports],
    max_line_bytes: maxLineBytes,
    ...(factory?.formatOptions ? factory.formatOptions(options) : options),
  };
}

/**
 * Creates the configured translators, in config order (first match wins at run time), each
 * with the common options the framework applies (`ports`, `maxLineBytes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTranslators, translatorConfigSchema } from "./registry.ts";
 *
 * const configs = translatorConfigSchema().array().parse([{ type: "ftp", ports: [21] }]);
 * const [ftp] = createTranslators(configs);
 * assert.equal(ftp?.translator.type, "ftp");
 * assert.ok(ftp?.ports.has(21));
 * ```
 *
 * @throws {TypeError} for an entry whose type no factory has.
 */
export function createTranslators(
  configs: readonly TranslatorConfig[],
  factories: readonly RegisteredTranslatorFactory[] = TRANSLATOR_FACTORIES,
): ConfiguredTranslator[] {
  return configs.map((config, index) => {
    const factory = factories.find((candidate) => candidate.type === config.type);
    if (!factory) {
      throw new TypeError(
        `Cannot create translator: translators[${index}].type ${config.type} is unknown`,
      );
    }
    return {
      translator: factory.create(config),
      ports: new Set(config.ports),
      maxLineBytes: config.maxLineBytes,
    };
  });
}
