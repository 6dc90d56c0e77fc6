/**
 * The error a malformed or refused HTTP proxy request ends with: a status and a one-line reason.
 *
 * @module
 */

/** A request the front door answers with `status` and the one-line `message`. */
export class HttpError extends Error {
  /** The response status (400, 403, 407, 414, 431, 502, 504, ...). */
  readonly status: number;

  /** Creates the error; `message` becomes the response's one-line body. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}
