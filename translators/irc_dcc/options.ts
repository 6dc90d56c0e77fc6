/**
 * The IRC DCC translator's options: YAML form (snake_case, seconds) validated at config load
 * into typed values, and back.
 *
 * ```yaml
 * translators:
 *   - type: irc-dcc
 *     ports: [6667]
 *     same_family: pass            # or translate
 *     listen_ports: { from: 50000, to: 50999 }
 *     offer_timeout: 120           # seconds an offer's listener waits
 *     max_offers: 8                # listeners open at once per IRC session
 * ```
 *
 * @module
 */

import { z } from "zod";
import { type PortRange, portRangeSchema } from "../data_channel.ts";
import { type SameFamily, sameFamilySchema, yamlMapping } from "../plugin_options.ts";

/** The IRC DCC translator's validated options. */
export interface IrcDccOptions {
  /** `pass` leaves same-family sessions untouched; `translate` handles them too. @default "pass" */
  readonly sameFamily: SameFamily;
  /** Ports of the gateway's listeners for offers. @default {from: 49152, to: 65535} */
  readonly listenPorts: PortRange;
  /** How long an offer's listener waits for its peer. @default 120000 */
  readonly offerTimeoutMs: number;
  /** Listeners open at once per IRC session; further offers are refused. @default 8 */
  readonly maxOffers: number;
}

/** The YAML key of each option, for both directions. */
const IRC_DCC_YAML = yamlMapping<IrcDccOptions>({
  sameFamily: "same_family",
  listenPorts: "listen_ports",
  offerTimeoutMs: { seconds: "offer_timeout" },
  maxOffers: "max_offers",
});

const MAX_SECONDS = 3600;

/**
 * The zod schema of the translator's own YAML keys (besides `type`, `ports` and
 * `max_line_bytes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ircDccOptionsSchema } from "./options.ts";
 *
 * const options = ircDccOptionsSchema.parse({ offer_timeout: 30, max_offers: 2 });
 * assert.equal(options.offerTimeoutMs, 30_000);
 * assert.equal(options.maxOffers, 2);
 * ```
 */
export const ircDccOptionsSchema: z.ZodType<IrcDccOptions> = z.strictObject({
  same_family: sameFamilySchema,
  listen_ports: portRangeSchema.default({ from: 49152, to: 65535 }),
  offer_timeout: z.number().refine(
    (n) => Number.isFinite(n) && n >= 1 && n <= MAX_SECONDS,
    `must be a number of seconds from 1 to ${MAX_SECONDS}`,
  ).default(120),
  max_offers: z.number().int("must be an integer").min(1, "must be 1..64").max(
    64,
    "must be 1..64",
  ).default(8),
}).transform((yaml) => IRC_DCC_YAML.fromYaml(yaml));

/** The YAML form of validated options (for `main.ts check`): parses back to the same values. */
export function formatIrcDccOptions(options: IrcDccOptions): Record<string, unknown> {
  return IRC_DCC_YAML.toYaml(options);
}
