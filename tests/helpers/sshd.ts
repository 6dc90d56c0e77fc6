/**
 * A real OpenSSH server (`sshd` from Debian's openssh-server) inside a topology host, on a high
 * port with its own host key and a client key made for the test, all in a temporary directory:
 * nothing of the machine's own SSH setup is read or changed.
 *
 * @module
 */

import type { HostName, SpawnedProcess, Topology } from "./netns.ts";

/** Options for {@link startSshd}. */
export interface SshdOptions {
  /** Directory for the keys, the config and `authorized_keys` (required; the caller removes it). */
  dir: string;
  /** Address to listen on (an IPv4 or IPv6 literal of the host). */
  address: string;
  /**
   * TCP port.
   * @default 2222
   */
  port?: number;
}

/** A running `sshd -D`; dispose it to stop the process. */
export interface Sshd extends AsyncDisposable {
  /** The listening address. */
  readonly address: string;
  /** The listening port. */
  readonly port: number;
  /** Private key (ed25519, no passphrase) that the server accepts for the current user. */
  readonly identity: string;
  /** The user to log in as (the test's own user). */
  readonly user: string;
  /** The process, for its log (`-e`: stderr). */
  readonly process: SpawnedProcess;
}

/** `sshd` refuses to start without its privilege-separation directory (Debian: /run/sshd). */
const PRIVSEP_DIR = "/run/sshd";

/**
 * Generates a host key and a client key in `options.dir`, writes an `sshd_config` that accepts
 * only that client key (public key only, no PAM), starts `sshd -D -e` in `host`, and waits
 * until the port accepts connections. SFTP is served by `internal-sftp`, which scp (OpenSSH 9
 * speaks SFTP by default) needs.
 */
export async function startSshd(
  topology: Topology,
  host: HostName,
  options: SshdOptions,
): Promise<Sshd> {
  const { dir, address } = options;
  const port = options.port ?? 2222;
  const prefix = `${dir}/sshd-${host}`;
  await Deno.mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  await keygen(`${prefix}-host_key`);
  await keygen(`${prefix}-client_key`);
  await Deno.copyFile(`${prefix}-client_key.pub`, `${prefix}-authorized_keys`);
  const user = await currentUser();
  const config = [
    `ListenAddress ${address}`,
    `Port ${port}`,
    `HostKey ${prefix}-host_key`,
    `AuthorizedKeysFile ${prefix}-authorized_keys`,
    `AllowUsers ${user}`,
    "PidFile none",
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    // The temporary directory is not laid out like ~/.ssh; the key files are ours alone anyway.
    "StrictModes no",
    "Subsystem sftp internal-sftp",
    "LogLevel VERBOSE",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${prefix}-sshd_config`, config);
  // sshd insists on an absolute path to re-execute itself.
  const process = topology.spawn(host, "/usr/sbin/sshd", [
    "-D",
    "-e",
    "-f",
    `${prefix}-sshd_config`,
  ]);
  try {
    await process.waitForTcp(address, port, { timeoutMs: 10_000 });
  } catch (error) {
    await process.stop();
    throw new Error(`Cannot start sshd in ${host}: ${error}\nsshd: ${process.stderr}`);
  }
  return {
    address,
    port,
    identity: `${prefix}-client_key`,
    user,
    process,
    [Symbol.asyncDispose]: async () => {
      await process.stop();
    },
  };
}

/**
 * The `ssh`/`scp` options that make a test client independent of the machine: no user config,
 * only the given key, no prompts, no known_hosts (the host key is fresh every run).
 */
export function sshClientOptions(identity: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    identity,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
  ];
}

async function keygen(path: string): Promise<void> {
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", "dualgate-test", "-f", path],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  if (!out.success) {
    throw new Error(`Cannot generate ${path}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

async function currentUser(): Promise<string> {
  const out = await new Deno.Command("id", { args: ["-un"], stdout: "piped", stderr: "null" })
    .output();
  const name = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || name === "") throw new Error("Cannot start sshd: no user name (id -un)");
  return name;
}
