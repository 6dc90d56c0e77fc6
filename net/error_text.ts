/**
 * The text of a caught value, for records, logs and error messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorText } from "./error_text.ts";
 *
 * assert.equal(errorText(new Error("Cannot connect: refused")), "Cannot connect: refused");
 * assert.equal(errorText("gone"), "gone");
 * ```
 *
 * @module
 */

/** The message of an `Error`, or the value as a string for anything else thrown. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
