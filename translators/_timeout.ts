/**
 * Private helper: run an abortable operation under a deadline, clearing the timer on every
 * path (tests run with the op and resource sanitizers on).
 *
 * @module
 */

/** Runs `operation` with a signal that aborts on `signal` or after `ms` milliseconds. */
export async function withTimeout<T>(
  ms: number,
  signal: AbortSignal,
  operation: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new Deno.errors.TimedOut(`timed out after ${ms} ms`)),
    ms,
  );
  try {
    return await operation(controller.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}
