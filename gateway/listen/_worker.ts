/**
 * The entry point of one worker isolate (`workers` above 1): it runs a gateway with
 * SO_REUSEPORT on the addresses the main isolate gives it, answers metric snapshot requests,
 * applies the reloaded configs the main isolate validated, and stops (with drain) when told. The messages are {@linkcode ToWorker} and
 * {@linkcode FromWorker}.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import type { IpEndpoint } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { type Gateway, startGateway } from "../gateway.ts";
import { setupLogging, teardownLogging } from "../observe/log.ts";
import type { MetricSnapshot } from "../observe/metrics.ts";
import type { LiveStatus } from "../observe/status.ts";

/** A message from the main isolate to a worker. */
export type ToWorker =
  | {
    readonly type: "start";
    readonly index: number;
    readonly count: number;
    readonly config: Config;
  }
  | { readonly type: "snapshot"; readonly id: number }
  | { readonly type: "reload"; readonly generation: number; readonly config: Config }
  | { readonly type: "stop"; readonly drainMs: number };

/** A message from a worker to the main isolate. */
export type FromWorker =
  | { readonly type: "started"; readonly endpoints: readonly IpEndpoint[] }
  | { readonly type: "failed"; readonly message: string }
  | {
    readonly type: "snapshot";
    readonly id: number;
    readonly metrics: MetricSnapshot[];
    readonly live: LiveStatus;
  }
  | { readonly type: "reloaded"; readonly generation: number; readonly closed: number }
  | { readonly type: "reload-failed"; readonly generation: number; readonly message: string }
  | { readonly type: "stopped" };

/** The parts of the worker global scope used here (the window lib does not declare them). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
let gateway: Gateway | null = null;

async function start(message: ToWorker & { type: "start" }): Promise<void> {
  try {
    await setupLogging(message.config.log, { worker: message.index });
    gateway = startGateway(message.config, {
      reusePort: true,
      descriptorShares: message.count,
      // The pool logs them once, not once per worker.
      warnings: false,
      logging: { worker: message.index },
    });
    scope.postMessage({ type: "started", endpoints: gateway.endpoints });
  } catch (error) {
    scope.postMessage({
      type: "failed",
      message: errorText(error),
    });
    await teardownLogging();
    scope.close();
  }
}

async function reload(message: ToWorker & { type: "reload" }): Promise<void> {
  if (!gateway) return;
  try {
    const { closed } = await gateway.apply(message.config, message.generation);
    scope.postMessage({ type: "reloaded", generation: message.generation, closed });
  } catch (error) {
    scope.postMessage({
      type: "reload-failed",
      generation: message.generation,
      message: errorText(error),
    });
  }
}

async function stop(drainMs: number): Promise<void> {
  await gateway?.stop(drainMs);
  gateway = null;
  await teardownLogging();
  scope.postMessage({ type: "stopped" });
  scope.close();
}

scope.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      void start(message);
      break;
    case "snapshot":
      if (gateway) {
        scope.postMessage({
          type: "snapshot",
          id: message.id,
          metrics: gateway.metrics.snapshot(),
          live: gateway.liveStatus(),
        });
      }
      break;
    case "reload":
      void reload(message);
      break;
    case "stop":
      void stop(message.drainMs);
      break;
  }
};
