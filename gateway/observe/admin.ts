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
 * included. A `POST /reload` a browser sends from another origin is refused with 403 (CSRF: a
 * page elsewhere posting to a loopback listener), whatever the credentials. Without `auth`, a
 * `Host` other than an address or `localhost` gets 403 (DNS rebinding), `/healthz` excepted.
 *
 * @module
 */

import { endpointFromNetAddr, formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
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

/**
 * True when `hostname` (the request's `Host`) is an address literal or `localhost`: what an
 * open (loopback) admin listener answers, so that a web page whose name an attacker rebinds
 * to 127.0.0.1 (DNS rebinding) cannot read it or post to it.
 */
function localHost(hostname: string): boolean {
  const bare = hostname.replace(/^\[(.*)\]$/, "$1");
  return parseIp(bare) !== null || bare === "localhost" || bare.endsWith(".localhost");
}

async function handle(
  request: Request,
  options: AdminServerOptions,
  client: IpEndpoint,
): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (!options.auth && path !== "/healthz" && !localHost(url.hostname)) {
    await request.body?.cancel();
    return new Response("unexpected Host: use the address or localhost\n", {
      status: 403,
      headers: { "content-type": TEXT, "cache-control": "no-store" },
    });
  }
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

/**
 * True when a browser sent `request` for a page of another origin (CSRF): `Sec-Fetch-Site`
 * other than `same-origin` or `none` (typed or bookmarked), or an `Origin` other than this
 * listener's own. curl and scripts send neither.
 */
function crossSite(request: Request): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") return true;
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  try {
    return new URL(origin).origin !== new URL(request.url).origin;
  } catch {
    return true; // "null" (an opaque origin) or garbage
  }
}

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
  if (crossSite(request)) {
    await request.body?.cancel();
    return new Response("cross-site request refused\n", {
      status: 403,
      headers: { "content-type": TEXT, "cache-control": "no-store" },
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
