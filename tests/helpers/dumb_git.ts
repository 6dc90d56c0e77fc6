/**
 * A bare git repository prepared for git's "dumb HTTP" protocol, so that any static file server
 * (here `python3 -m http.server`) serves `git clone http://...`: `git update-server-info` writes
 * the `info/refs` and `objects/info/packs` indexes a dumb client reads.
 *
 * @module
 */

/** Options for {@link createDumbHttpRepo}. */
export interface DumbHttpRepoOptions {
  /**
   * Directory name of the bare repository inside the served directory.
   * @default "repo.git"
   */
  name?: string;
}

/**
 * Environment for git commands in tests: no system or global config of the machine, so user
 * settings (`url.*.insteadOf`, `http.proxy`, ...) cannot change what a test does.
 */
export const GIT_ENV: Readonly<Record<string, string>> = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
};

/**
 * Commits `files` (paths relative to `served`, copied in under their base names) into a new
 * repository and publishes it as `served/<name>`, a bare repository ready for dumb HTTP.
 * Returns the repository's directory.
 */
export async function createDumbHttpRepo(
  served: string,
  files: readonly string[],
  options: DumbHttpRepoOptions = {},
): Promise<string> {
  const name = options.name ?? "repo.git";
  const work = await Deno.makeTempDir({ prefix: "dualgate-git-work-" });
  try {
    await git(["init", "-q", "-b", "main", work]);
    for (const file of files) {
      await Deno.copyFile(file, `${work}/${file.split("/").pop()}`);
    }
    await git(["-C", work, "add", "--all"]);
    await git([
      "-C",
      work,
      "-c",
      "user.name=dualgate",
      "-c",
      "user.email=dev@dualgate.invalid",
      "commit",
      "-q",
      "-m",
      "payload",
    ]);
    const bare = `${served}/${name}`;
    await git(["clone", "-q", "--bare", work, bare]);
    await git(["-C", bare, "update-server-info"]);
    return bare;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

async function git(args: readonly string[]): Promise<void> {
  const out = await new Deno.Command("git", {
    args: [...args],
    env: GIT_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}
