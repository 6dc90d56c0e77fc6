/**
 * Options that translator plugins share, written once: the `same_family` choice and the
 * `match()` it means, and the map between a plugin's YAML keys (snake_case, seconds) and its
 * typed options (camelCase, milliseconds), used both ways (config load and `main.ts check`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { yamlMapping } from "./plugin_options.ts";
 *
 * interface Options {
 *   readonly dataTimeoutMs: number;
 *   readonly refuseTls: boolean;
 * }
 * const yaml = yamlMapping<Options>({ dataTimeoutMs: { seconds: "data_timeout" }, refuseTls: "refuse_tls" });
 * const options = yaml.fromYaml({ data_timeout: 2.5, refuse_tls: true });
 * assert.deepEqual(options, { dataTimeoutMs: 2500, refuseTls: true });
 * assert.deepEqual(yaml.toYaml(options), { data_timeout: 2.5, refuse_tls: true });
 * ```
 *
 * @module
 */

import { z } from "zod";
import type {
  DataChannelBroker,
  MatchResult,
  Translator,
  TranslatorCommonOptions,
  TranslatorContext,
  TranslatorFactory,
  TranslatorSession,
} from "./types.ts";

/** What a translator does with sessions whose client and server are of the same family. */
export type SameFamily = "pass" | "translate";

/** The `same_family` YAML option: `pass` (the default) or `translate`. */
export const sameFamilySchema = z.enum(["pass", "translate"]).default("pass");

/**
 * The `match()` of a translator across IP families: claims a session whose client and server
 * differ in family, and a same-family one only when `sameFamily` is `translate`.
 */
export function matchAcrossFamilies(ctx: TranslatorContext, sameFamily: SameFamily): MatchResult {
  const crossFamily = ctx.client.address.family !== ctx.server.address.family;
  return crossFamily || sameFamily === "translate" ? "claim" : "decline";
}

/**
 * A translator of `type` across IP families: claims sessions as {@linkcode matchAcrossFamilies}
 * decides with `sameFamily`, and starts each claimed one with `startSession`.
 */
export function translatorAcrossFamilies(
  type: string,
  sameFamily: SameFamily,
  startSession: Translator["startSession"],
): Translator {
  return { type, match: (ctx) => matchAcrossFamilies(ctx, sameFamily), startSession };
}

/**
 * The factory of a plugin across IP families: `create` makes a translator that claims sessions
 * as {@linkcode matchAcrossFamilies} decides with the entry's `same_family`, and starts each
 * claimed one with `session` (the plugin's hooks for that session, with the entry's options).
 */
export function factoryAcrossFamilies<Options extends { readonly sameFamily: SameFamily }>(
  plugin: Omit<TranslatorFactory<Options>, "create">,
  session: (
    ctx: TranslatorContext,
    broker: DataChannelBroker,
    options: Options & TranslatorCommonOptions,
  ) => TranslatorSession,
): TranslatorFactory<Options> {
  return {
    ...plugin,
    create: (options) =>
      translatorAcrossFamilies(
        plugin.type,
        options.sameFamily,
        (ctx, broker) => session(ctx, broker, options),
      ),
  };
}

/** A typed option's YAML key; `{ seconds: key }` for a duration typed in milliseconds. */
export type YamlKey = string | { readonly seconds: string };

/** The YAML key of each typed option of a plugin. */
export type YamlKeys<Options> = { readonly [Key in keyof Options]-?: YamlKey };

/** Typed options from validated YAML values (seconds become whole milliseconds). */
function optionsFromYaml<Options>(
  keys: YamlKeys<Options>,
  yaml: Readonly<Record<string, unknown>>,
): Options {
  const options: Record<string, unknown> = {};
  for (const [typed, key] of Object.entries<YamlKey>(keys)) {
    options[typed] = typeof key === "string"
      ? yaml[key]
      : Math.round(Number(yaml[key.seconds]) * 1000);
  }
  return options as Options;
}

/** The YAML form of typed options: it parses back to the same values. */
function optionsToYaml<Options>(
  keys: YamlKeys<Options>,
  options: Options,
): Record<string, unknown> {
  const typedOptions = options as Record<string, unknown>;
  const yaml: Record<string, unknown> = {};
  for (const [typed, key] of Object.entries<YamlKey>(keys)) {
    const value = typedOptions[typed];
    if (typeof key !== "string") yaml[key.seconds] = Number(value) / 1000;
    else yaml[key] = value !== null && typeof value === "object" ? { ...value } : value;
  }
  return yaml;
}

/** Both directions between a plugin's YAML keys and its typed options. */
export interface YamlMapping<Options> {
  /** Typed options from validated YAML values (for the options schema's `.transform()`). */
  fromYaml(yaml: Readonly<Record<string, unknown>>): Options;
  /** The YAML form of typed options (the factory's `formatOptions`). */
  toYaml(options: Options): Record<string, unknown>;
}

/** The mapping of a plugin's options, from the YAML key of each typed option. */
export function yamlMapping<Options>(keys: YamlKeys<Options>): YamlMapping<Options> {
  return {
    fromYaml: (yaml) => optionsFromYaml(keys, yaml),
    toYaml: (options) => optionsToYaml(keys, options),
  };
}
