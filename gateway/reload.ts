/**
 * Reload: re-reads the config (SIGHUP, `POST /reload`) and applies it, one reload at a time.
 * A config that does not validate is refused with the same path-qualified problems as
 * `main.ts check` prints, logged, and counted; the running config stays in force. A valid one
 * that cannot be applied (a new listen address in use) is `failed`, and nothing changes.
 *
 * @module
 */

import { errorText } from "../net/error_text.ts";
import { ConfigError, formatConfigProblem } from "./config/errors.ts";
import type { Config } from "./config/types.ts";
import { logger } from "./observe/log.ts";

/** How a reload ended. */
export type ReloadResult = "accepted" | "refused" | "failed";

/** What a reload did. */
export interface ReloadOutcome {
  /** `accepted`: in force; `refused`: the config is invalid; `failed`: it could not be applied. */
  readonly result: ReloadResult;
  /** The config generation in force afterwards. */
  readonly generation: number;
  /** Live sessions closed (accepted reloads). */
  readonly closed: number;
  /** One line per problem (`refused`: `path: reason`, as `check` prints them), or a summary. */
  readonly message: string;
}

/** What applying a valid config gives back. */
export interface Applied {
  /** The new generation. */
  readonly generation: number;
  /** Live sessions closed. */
  readonly closed: number;
}

/** Options of {@linkcode createReloader}. */
export interface ReloaderOptions {
  /** Reads and validates the config (the file and the CLI flags, as at start). */
  readonly load: () => Promise<Config>;
  /** Puts a valid config in force; throws, changing nothing, when it cannot. */
  readonly apply: (config: Config) => Promise<Applied>;
  /** The generation in force now. */
  readonly generation: () => number;
  /** Counts each reload by result. */
  readonly count: (result: ReloadResult) => void;
}

const log = logger("reload");

/** Returns the reload function: each call waits for the one before it. Never rejects. */
export function createReloader(options: ReloaderOptions): () => Promise<ReloadOutcome> {
  let last: Promise<unknown> = Promise.resolve();
  const once = async (): Promise<ReloadOutcome> => {
    let config: Config;
    try {
      config = await options.load();
    } catch (error) {
      const lines = error instanceof ConfigError
        ? error.problems.map(formatConfigProblem)
        : [errorText(error)];
      const generation = options.generation();
      for (const line of lines) {
        log.error("reload refused, generation {generation} stays in force: {problem}", {
          generation,
          problem: line,
        });
      }
      options.count("refused");
      return { result: "refused", generation, closed: 0, message: lines.join("\n") };
    }
    try {
      const { generation, closed } = await options.apply(config);
      options.count("accepted");
      log.info("config reloaded: generation {generation} in force, {closed} sessions closed", {
        generation,
        closed,
      });
      return {
        result: "accepted",
        generation,
        closed,
        message: `generation ${generation}, ${closed} sessions closed`,
      };
    } catch (error) {
      const generation = options.generation();
      const message = errorText(error);
      log.error("reload failed, generation {generation} stays in force: {error}", {
        generation,
        error: message,
      });
      options.count("failed");
      return { result: "failed", generation, closed: 0, message };
    }
  };
  return () => {
    const next = last.then(once, once);
    last = next;
    return next;
  };
}
