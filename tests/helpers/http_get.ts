/**
 * A minimal HTTP/1.1 GET over a fresh TCP connection (`Connection: close`), so that tests leave
 * no pooled connection behind for the leak sanitizers.
 *
 * @module
 */

/** What {@linkcode httpGet} read. */
export interface HttpGetResult {
  /** Status code. */
  readonly status: number;
  /** Header fields, names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  /** The body as text (no chunked coding is expected with `Connection: close`). */
  readonly body: string;
}

/** Options of {@linkcode httpGet}. */
export interface HttpGetOptions {
  /** Gives up when aborted. @default a 10 s timeout */
  signal?: AbortSignal;
}

/** GETs `path` from `hostname:port` and reads the response until the server closes. */
export async function httpGet(
  address: { readonly hostname: string; readonly port: number },
  path: string,
  options: HttpGetOptions = {},
): Promise<HttpGetResult> {
  const signal = options.signal ?? AbortSignal.timeout(10_000);
  using conn = await Deno.connect({ hostname: address.hostname, port: address.port });
  const onAbort = () => {
    try {
      conn.close();
    } catch { /* closed */ }
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
    const request = `GET ${path} HTTP/1.1\r\nHost: ${host}:${address.port}\r\n` +
      "Connection: close\r\n\r\n";
    const bytes = new TextEncoder().encode(request);
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16 * 1024);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const text = new TextDecoder().decode(
      chunks.reduce((all, chunk) => {
        const out = new Uint8Array(all.length + chunk.length);
        out.set(all);
        out.set(chunk, all.length);
        return out;
      }, new Uint8Array()),
    );
    const split = text.indexOf("\r\n\r\n");
    if (split < 0) {
      throw new Error(`Cannot read HTTP response: no header end in ${text.length} bytes`);
    }
    const [statusLine, ...fields] = text.slice(0, split).split("\r\n");
    const status = Number(statusLine?.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const field of fields) {
      const colon = field.indexOf(":");
      headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim());
    }
    let body = text.slice(split + 4);
    if (headers.get("transfer-encoding") === "chunked") body = unchunk(body);
    return { status, headers, body };
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function unchunk(text: string): string {
  let out = "";
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, end), 16);
    if (!(size > 0)) break;
    out += text.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
  return out;
}

/** Reads one sample's value from an exposition text (`name{labels}` exactly); 0 when absent. */
export function sampleValue(text: string, series: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return 0;
}
