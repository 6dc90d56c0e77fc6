/**
 * A real HTTP file server (`python3 -m http.server`) inside a topology host, and random test
 * files with their SHA-256 digests.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { HostName, SpawnedProcess, Topology } from "./netns.ts";

/** Options for {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Directory to serve (required). */
  directory: string;
  /**
   * Address to bind (an IPv4 or IPv6 literal of the host).
   * @default the host's own address (server4: 198.51.100.2, server6: 2001:db8:2::2)
   */
  address?: string;
  /**
   * TCP port.
   * @default 8080
   */
  port?: number;
  /**
   * Milliseconds to wait for the port to accept.
   * @default 10000
   */
  readyTimeoutMs?: number;
}

/** A running `python3 -m http.server`; dispose it to stop the process. */
export interface HttpServer extends AsyncDisposable {
  /** The host it runs in. */
  readonly host: HostName;
  /** The bound address. */
  readonly address: string;
  /** The bound port. */
  readonly port: number;
  /** The served directory. */
  readonly directory: string;
  /** The process, for its output. */
  readonly process: SpawnedProcess;
  /** URL of a file in the served directory, by address (`http://[2001:db8:2::2]:8080/f`). */
  url(path: string): string;
}

/**
 * Starts `python3 -m http.server PORT --bind ADDR --directory DIR` in `host` and waits until
 * it accepts connections.
 *
 * @example
 * ```ts ignore
 * await using http = await startHttpServer(topo, "server6", { directory: dir });
 * ```
 */
export async function startHttpServer(
  topology: Topology,
  host: HostName,
  options: HttpServerOptions,
): Promise<HttpServer> {
  const directory = options.directory;
  const address = options.address ?? defaultAddress(topology, host);
  const port = options.port ?? 8080;
  const process = topology.spawn(host, "python3", [
    "-m",
    "http.server",
    String(port),
    "--bind",
    address,
    "--directory",
    directory,
  ], { env: { PYTHONUNBUFFERED: "1" } });
  try {
    await process.waitForTcp(address, port, { timeoutMs: options.readyTimeoutMs ?? 10_000 });
  } catch (error) {
    await process.stop();
    throw error;
  }
  const hostPart = address.includes(":") ? `[${address}]` : address;
  return {
    host,
    address,
    port,
    directory,
    process,
    url: (path) => `http://${hostPart}:${port}/${path.replace(/^\//, "")}`,
    [Symbol.asyncDispose]: async () => {
      await process.stop();
    },
  };
}

/** A file written by {@link createRandomFile}. */
export interface RandomFile {
  /** Absolute path. */
  path: string;
  /** Base name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Lower-case hex SHA-256 of the content. */
  sha256: string;
}

/** Options for {@link createRandomFile}. */
export interface RandomFileOptions {
  /**
   * File name inside the directory.
   * @default "file.bin"
   */
  name?: string;
  /**
   * Size in bytes.
   * @default 4 MiB
   */
  size?: number;
}

/**
 * Writes a file of random bytes into `directory` and returns its path and SHA-256.
 *
 * @example
 * ```ts ignore
 * const file = await createRandomFile(dir, { size: 4 * 1024 * 1024 });
 * ```
 */
export async function createRandomFile(
  directory: string,
  options: RandomFileOptions = {},
): Promise<RandomFile> {
  const name = options.name ?? "file.bin";
  const size = options.size ?? 4 * 1024 * 1024;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Cannot create random file: size ${size} is not a byte count`);
  }
  const path = `${directory}/${name}`;
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  // getRandomValues fills at most 64 KiB per call.
  const chunk = new Uint8Array(65_536);
  for (let written = 0; written < size;) {
    const part = chunk.subarray(0, Math.min(chunk.byteLength, size - written));
    crypto.getRandomValues(part);
    hash.update(part);
    for (let offset = 0; offset < part.byteLength;) {
      offset += await file.write(part.subarray(offset));
    }
    written += part.byteLength;
  }
  return { path, name, size, sha256: hash.digest("hex") };
}

/** Lower-case hex SHA-256 of a file's content, read in chunks. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(65_536);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

function defaultAddress(topology: Topology, host: HostName): string {
  switch (host) {
    case "server4":
      return topology.addresses.server4.v4;
    case "server6":
      return topology.addresses.server6.v6;
    case "client4":
      return topology.addresses.client4.v4;
    case "client6":
      return topology.addresses.client6.v6;
    case "gateway":
      return topology.addresses.gateway.v4;
  }
}
