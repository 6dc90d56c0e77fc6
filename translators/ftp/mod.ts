/**
 * The FTP translator: PORT/PASV/LPRT/LPSV/EPRT/EPSV across IPv4 and IPv6 (RFC 959, 1639, 2428),
 * with RFC 2577 data-connection rules and SOCKS-mode expectations.
 *
 * @module
 */

import { factoryAcrossFamilies } from "../plugin_options.ts";
import type { Translator, TranslatorCommonOptions, TranslatorFactory } from "../types.ts";
import { formatFtpOptions, type FtpOptions, ftpOptionsSchema } from "./options.ts";
import { FtpSession } from "./session.ts";

export { formatFtpOptions, type FtpOptions, ftpOptionsSchema, type PortRange } from "./options.ts";
export { type FtpReply, FtpSession } from "./session.ts";

/** The FTP plugin, as listed in `translators/registry.ts`. */
export const ftpTranslatorFactory: TranslatorFactory<FtpOptions> = factoryAcrossFamilies({
  type: "ftp",
  description: "FTP across IPv4 and IPv6: PORT/PASV/LPRT/LPSV/EPRT/EPSV translation",
  defaultPorts: [21],
  optionsSchema: ftpOptionsSchema,
  formatOptions: formatFtpOptions,
}, (ctx, broker, options) => new FtpSession(ctx, broker, options));

/** Creates a configured FTP translator (what the registry does with a `type: ftp` entry). */
export const createFtpTranslator: (options: FtpOptions & TranslatorCommonOptions) => Translator =
  ftpTranslatorFactory.create;
