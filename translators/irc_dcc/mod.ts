/**
 * The IRC DCC translator: `DCC SEND/CHAT/RESUME/ACCEPT` offers inside IRC PRIVMSGs carry the
 * offerer's address (IPv4 as a 32-bit integer, IPv6 as text) and port; across families the
 * gateway stands in for the offerer, so each peer reaches the other with an address of its
 * own family.
 *
 * @module
 */

import { factoryAcrossFamilies } from "../plugin_options.ts";
import type { Translator, TranslatorCommonOptions, TranslatorFactory } from "../types.ts";
import { formatIrcDccOptions, type IrcDccOptions, ircDccOptionsSchema } from "./options.ts";
import { IrcDccSession } from "./session.ts";

export { formatIrcDccOptions, type IrcDccOptions, ircDccOptionsSchema } from "./options.ts";
export { DCC_LABEL, IrcDccSession } from "./session.ts";

/**
 * The longest IRC line with IRCv3 message tags, CRLF included: 8191 bytes of tags (with the
 * leading `@` and the trailing space) and 512 of message. Plain IRC lines are 512 at most.
 */
export const IRC_MAX_LINE_BYTES = 8191 + 512;

/** The IRC DCC plugin, as listed in `translators/registry.ts`. */
export const ircDccTranslatorFactory: TranslatorFactory<IrcDccOptions> = factoryAcrossFamilies({
  type: "irc-dcc",
  description: "IRC DCC across IPv4 and IPv6: SEND/CHAT/RESUME/ACCEPT offers rewritten",
  defaultPorts: [6667],
  defaultMaxLineBytes: IRC_MAX_LINE_BYTES,
  optionsSchema: ircDccOptionsSchema,
  formatOptions: formatIrcDccOptions,
}, (ctx, broker, options) => new IrcDccSession(ctx, broker, options));

/** Creates a configured IRC DCC translator (what the registry does with a `type: irc-dcc`). */
export const createIrcDccTranslator: (
  options: IrcDccOptions & TranslatorCommonOptions,
) => Translator = ircDccTranslatorFactory.create;
