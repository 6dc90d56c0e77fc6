/**
 * The admin listener: `GET /metrics` (Prometheus text exposition), `GET /healthz` (200 `ok`
 * while serving, 503 `draining` while the gateway stops; then the config generation each
 * isolate runs), `POST /reload` (re-read the config: 200 accepted, 400 refused, 500 failed, with
 * the reason) and, given a status source, `GET /` (the live status page, self-contained) and
 * `GET /api/status` (the same data as JSON). Only started when `admin` is configured; loopback by
 * default.
 *
 * With {@linkcode AdminServerOptions.auth}, every path but `/healthz` (what a load balancer
 * probes) answers 401 without valid credentials, before anything else is looked at: `/reload`
 * included.
 *
 * @module
 */

import { endpointFromNetAddr, formatIp, type IpEndpoint } from "../../net/address.ts";
import { ADMIN_CHALLENGE, type AdminAuth, isAuthorized } from "./admin_auth.ts";
import { EXPOSITION_CONTENT_TYPE } from "./metrics.ts";
import type { ReloadOutcome } from "../reload.ts";
import type { Status } from "./status.ts";
import { statusPage } from "./status_page.ts";

/** Options of {@linkcode startAdminServer}. */
export interface AdminServerOptions {
  /** Renders the exposition text for `/metrics` (gathered from worker isolates, maybe). */
  metrics: () => string | Promise<string>;
  /** `false` while draining: `/healthz` answers 503. @default always healthy */
  healthy?: () => boolean;
  /** Lines `/healthz` adds after its status (the config generation). @default none */
  details?: () => string;
  /** Runs a reload for `POST /reload`. @default none: `/reload` is not found */
  reload?: () => Promise<ReloadOutcome>;
  /** Builds the status for `/` and `/api/status`. @default none: both answer 404 */
  status?: () => Promise<Status>;
  /** Credentials required on every path but `/healthz`. @default none: open */
  auth?: AdminAuth;
}

/** A running admin listener. Disposing it closes it. */
export interface AdminServer extends AsyncDisposable {
  /** The bound endpoint (port 0 replaced by the real port). */
  readonly endpoint: IpEndpoint;
  /** Stops listening, closes idle connections and waits for requests in flight. */
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

const PATHS = ["/metrics", "/healthz", "/", "/api/status"];

async function handle(
  request: Request,
  options: AdminServerOptions,
  client: IpEndpoint,
): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (
    path !== "/healthz" && options.auth &&
    !await isAuthorized(request.headers.get("authorization"), options.auth, {
      endpoint: client,
      signal: request.signal,
    })
  ) {
    await request.body?.cancel();
    return new Response("unauthorized\n", {
      status: 401,
      headers: {
        "content-type": TEXT,
        "www-authenticate": ADMIN_CHALLENGE,
        "cache-control": "no-store",
      },
    });
  }
  if (path === "/reload" && options.reload) return await reload(request, options.reload);
  if (!PATHS.includes(path) || (!options.status && (path === "/" || path === "/api/status"))) {
    return new Response("not found\n", { status: 404, headers: { "content-type": TEXT } });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { "content-type": TEXT, allow: "GET, HEAD" },
    });
  }
  const head = request.method === "HEAD";
  if (path === "/healthz") {
    const healthy = options.healthy?.() ?? true;
    const details = options.details?.() ?? "";
    return new Response(head ? null : (healthy ? "ok\n" : "draining\n") + details, {
      status: healthy ? 200 : 503,
      headers: { "content-type": TEXT, "cache-control": "no-store" },
    });
  }
  if (path === "/api/status") {
    return new Response(head ? null : JSON.stringify(await options.status!()), {
      headers: {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  }
  if (path === "/") {
    const page = statusPage();
    return new Response(head ? null : page.html, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": page.csp,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
      },
    });
  }
  return new Response(head ? null : await options.metrics(), {
    headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

const RELOAD_STATUS = { accepted: 200, refused: 400, failed: 500 } as const;

async function reload(
  request: Request,
  run: () => Promise<ReloadOutcome>,
): Promise<Response> {
  if (request.method !== "POST") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { "content-type": TEXT, allow: "POST" },
    });
  }
  const outcome = await run();
  return new Response(`${outcome.result}: ${outcome.message}\n`, {
    status: RELOAD_STATUS[outcome.result],
    headers: { "content-type": TEXT, "cache-control": "no-store" },
  });
}

/**
 * Starts the admin HTTP listener on `endpoint`.
 *
 * @throws {Deno.errors.AddrInUse} and other listen errors, synchronously.
 */
export function startAdminServer(endpoint: IpEndpoint, options: AdminServerOptions): AdminServer {
  const server = Deno.serve({
    hostname: formatIp(endpoint.address),
    port: endpoint.port,
    // Without onListen, Deno.serve writes a "Listening on" line to the console.
    onListen: () => {},
    onError: () => new Response("internal error\n", { status: 500 }),
  }, (request, info) => handle(request, options, endpointFromNetAddr(info.remoteAddr)));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= server.shutdown().then(() => server.finished);
    return closing;
  };
  return {
    endpoint: endpointFromNetAddr(server.addr),
    close,
    [Symbol.asyncDispose]: close,
  };
}
