/**
 * A minimal translator, the model for "writing a translator": a line protocol where the
 * gateway itself answers one command (`ECHO-ADDR` by default) with the addresses it sees,
 * and relays every other line untouched.
 *
 * ```yaml
 * translators:
 *   - { type: echo-addr, ports: [7007], command: WHOAMI }
 * ```
 *
 * @module
 */

import { z } from "zod";
import { formatEndpoint } from "../../net/address.ts";
import type {
  Line,
  LineIo,
  LineVerdict,
  TranslatorCommonOptions,
  TranslatorContext,
  TranslatorFactory,
  TranslatorSession,
} from "../types.ts";

/** The options of the echo-addr translator. */
export const echoAddrOptionsSchema = z.strictObject({
  /** The command the gateway answers itself (case-insensitive). */
  command: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,31}$/).default("ECHO-ADDR"),
});

/** Validated options of the echo-addr translator. */
export type EchoAddrOptions = z.output<typeof echoAddrOptionsSchema>;

class EchoAddrSession implements TranslatorSession {
  readonly #ctx: TranslatorContext;
  readonly #command: string;

  constructor(ctx: TranslatorContext, command: string) {
    this.#ctx = ctx;
    this.#command = command.toUpperCase();
  }

  async onClientLine(line: Line, io: LineIo): Promise<LineVerdict> {
    if (line.text.trim().toUpperCase() !== this.#command) return "forward";
    await io.sendToClient(
      `client=${formatEndpoint(this.#ctx.client)} server=${formatEndpoint(this.#ctx.server)}`,
    );
    return "consumed";
  }
}

/** The echo-addr plugin, as listed in `translators/registry.ts`. */
export const echoAddrTranslatorFactory: TranslatorFactory<EchoAddrOptions> = {
  type: "echo-addr",
  description: "Example: answers one command with the client and server addresses",
  defaultPorts: [7007],
  optionsSchema: echoAddrOptionsSchema,
  create(options: EchoAddrOptions & TranslatorCommonOptions) {
    return {
      type: "echo-addr",
      // The framework applies `ports`: match() is only asked for sessions to one of them.
      match: () => "claim",
      startSession: (ctx) => new EchoAddrSession(ctx, options.command),
    };
  },
};
