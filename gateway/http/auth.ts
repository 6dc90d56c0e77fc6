/**
 * `Proxy-Authorization: Basic` against `auth.users`, through the same login gate as RFC 1929
 * (failed-login limiter, fair password checks). A connection that proved its credentials is
 * not checked again while it sends the same header.
 *
 * @module
 */

import type { IpEndpoint } from "../../net/address.ts";
import type { SessionServices } from "../session_types.ts";
import { HttpError } from "./errors.ts";
import { type Field, fieldValues } from "./message.ts";

/** Basic credentials: user and password. */
export interface BasicCredentials {
  /** The user name. */
  readonly username: string;
  /** The password. */
  readonly password: string;
}

/**
 * Parses the `Proxy-Authorization` field of `fields`: `null` when absent, 400 when repeated,
 * not `Basic`, not base64, or without a colon.
 */
export function basicCredentials(fields: readonly Field[]): BasicCredentials | null {
  const values = fieldValues(fields, "proxy-authorization");
  if (values.length === 0) return null;
  if (values.length > 1) throw new HttpError(400, "more than one Proxy-Authorization");
  const match = /^Basic +([A-Za-z0-9+/]+={0,2})$/i.exec(values[0]!);
  if (match === null) throw new HttpError(400, "Proxy-Authorization is not Basic credentials");
  let text: string;
  try {
    const binary = atob(match[1]!);
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
  } catch {
    throw new HttpError(400, "Proxy-Authorization is not valid base64 UTF-8");
  }
  const colon = text.indexOf(":");
  if (colon < 0) throw new HttpError(400, "Proxy-Authorization without a colon");
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** What {@linkcode HttpLogin.authorize} checks: one request of a client. */
export interface AuthorizeRequest {
  /** The client (its key is what the failed-login limiter counts). */
  readonly client: IpEndpoint;
  /** The request's header fields. */
  readonly fields: readonly Field[];
  /** Aborts a password check still waiting for its turn. */
  readonly signal: AbortSignal;
}

/** What one connection remembers of its authentication. */
export class HttpLogin {
  #proven: string | null = null;
  #user: string | undefined;

  /** The authenticated user, once one is. */
  get user(): string | undefined {
    return this.#user;
  }

  /**
   * Authorises a request with `fields` from `client`: nothing to do without users; else the
   * credentials must be valid (407 without or with wrong ones, 429 over the failed-login limit,
   * 503 when password checks are saturated). Returns the user, if any.
   */
  async authorize(
    services: SessionServices,
    request: AuthorizeRequest,
  ): Promise<string | undefined> {
    const { client, fields, signal } = request;
    if (services.users.size === 0) return undefined;
    const header = fieldValues(fields, "proxy-authorization")[0];
    if (header !== undefined && header === this.#proven) return this.#user;
    if (services.refuseAuth?.(client) === true) {
      throw new HttpError(429, "too many failed logins");
    }
    const credentials = basicCredentials(fields);
    if (credentials === null) throw new HttpError(407, "proxy authentication required");
    const verdict = await services.authenticate(
      client,
      credentials.username,
      credentials.password,
      signal,
    );
    const known = services.users.has(credentials.username);
    switch (verdict) {
      case "accepted":
        this.#proven = header!;
        this.#user = credentials.username;
        return this.#user;
      case "rejected":
        throw new LoginError(
          407,
          "authentication failed",
          known ? credentials.username : undefined,
        );
      case "blocked":
        throw new LoginError(
          429,
          "too many failed logins",
          known ? credentials.username : undefined,
        );
      case "busy":
        throw new LoginError(503, "authentication busy", known ? credentials.username : undefined);
    }
  }
}

/** A refused login; `user` is set when it named a configured user (for the record). */
export class LoginError extends HttpError {
  /** The configured user the login tried, if it named one. */
  readonly user: string | undefined;

  /** Creates the error. */
  constructor(status: number, message: string, user: string | undefined) {
    super(status, message);
    this.user = user;
  }
}
