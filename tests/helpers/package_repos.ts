/**
 * Offline package repositories for e2e tests, served by any static file server: a PEP 503
 * "simple" index holding one pure-Python wheel (for `pip download`), and a flat Debian
 * repository holding one `.deb` (built with dpkg-deb, indexed with dpkg-scanpackages and
 * apt-ftparchive, for `apt-get update` and `apt-get download`).
 *
 * @module
 */

/** What {@linkcode createPipIndex} and {@linkcode createAptRepo} made. */
export interface BuiltPackage {
  /** Package name. */
  readonly name: string;
  /** The artefact's path (the wheel or the .deb). */
  readonly path: string;
  /** The artefact's file name. */
  readonly fileName: string;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(cwd !== undefined ? { cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) {
    throw new Error(`Cannot run ${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

const WHEEL_SCRIPT = `
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1], sys.argv[2], sys.argv[3]
files = {
  f"{name}/__init__.py": b"GREETING = 'carried across families'\\n",
  f"{name}-{version}.dist-info/METADATA":
    f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode(),
  f"{name}-{version}.dist-info/WHEEL":
    b"Wheel-Version: 1.0\\nGenerator: dualgate-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for path, data in files.items():
  digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
  record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{name}-{version}.dist-info/RECORD,,")
files[f"{name}-{version}.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
with zipfile.ZipFile(out, "w") as z:
  for path, data in files.items():
    z.writestr(path, data)
`;

/**
 * Writes `served/simple/<name>/index.html` and the wheel under `served/packages/`; the index
 * link carries the wheel's sha256, which pip checks.
 */
export async function createPipIndex(served: string, name = "dgtpkg"): Promise<BuiltPackage> {
  const version = "1.0";
  const fileName = `${name}-${version}-py3-none-any.whl`;
  await Deno.mkdir(`${served}/packages`, { recursive: true });
  await Deno.mkdir(`${served}/simple/${name}`, { recursive: true });
  const path = `${served}/packages/${fileName}`;
  await run("python3", ["-c", WHEEL_SCRIPT, path, name, version]);
  const digest = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(
    `${served}/simple/index.html`,
    `<!DOCTYPE html><html><body><a href="${name}/">${name}</a></body></html>\n`,
  );
  await Deno.writeTextFile(
    `${served}/simple/${name}/index.html`,
    `<!DOCTYPE html><html><body><a href="../../packages/${fileName}#sha256=${digest}">${fileName}</a></body></html>\n`,
  );
  return { name, path, fileName };
}

/** Writes a flat repository (`deb [trusted=yes] http://HOST/apt ./`) under `served/apt`. */
export async function createAptRepo(served: string, name = "dgt-hello"): Promise<BuiltPackage> {
  const repo = `${served}/apt`;
  const build = await Deno.makeTempDir({ prefix: "dualgate-deb-" });
  try {
    await Deno.mkdir(`${build}/DEBIAN`, { recursive: true });
    await Deno.mkdir(`${build}/usr/share/doc/${name}`, { recursive: true });
    await Deno.writeTextFile(
      `${build}/DEBIAN/control`,
      `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: dualgate <dev@dualgate.invalid>\n` +
        `Description: test package carried across address families\n`,
    );
    await Deno.writeTextFile(`${build}/usr/share/doc/${name}/README`, "hello through dualgate\n");
    await Deno.mkdir(repo, { recursive: true });
    const fileName = `${name}_1.0_all.deb`;
    await run("dpkg-deb", ["--root-owner-group", "--build", build, `${repo}/${fileName}`]);
    const packages = await run("dpkg-scanpackages", ["--multiversion", "."], repo);
    await Deno.writeTextFile(`${repo}/Packages`, packages);
    const release = await run("apt-ftparchive", ["release", "."], repo);
    await Deno.writeTextFile(`${repo}/Release`, release);
    return { name, path: `${repo}/${fileName}`, fileName };
  } finally {
    await Deno.remove(build, { recursive: true });
  }
}

/**
 * The `apt-get` options that keep it off the machine's own state: sources, lists, cache and
 * status in `dir`, the proxy `proxy`, no sandbox user (the test files belong to root).
 */
export async function aptOptions(dir: string, source: string, proxy: string): Promise<string[]> {
  for (
    const sub of ["lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d"]
  ) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  await Deno.writeTextFile(`${dir}/status`, "");
  await Deno.writeTextFile(`${dir}/sources.list`, `deb [trusted=yes] ${source} ./\n`);
  return [
    "-o",
    `Dir::Etc::sourcelist=${dir}/sources.list`,
    "-o",
    "Dir::Etc::sourceparts=-",
    "-o",
    `Dir::Etc::parts=${dir}/etc/apt.conf.d`,
    "-o",
    `Dir::Etc::preferencesparts=${dir}/etc/preferences.d`,
    "-o",
    `Dir::State::Lists=${dir}/lists`,
    "-o",
    `Dir::State::status=${dir}/status`,
    "-o",
    `Dir::Cache=${dir}/cache`,
    "-o",
    "APT::Sandbox::User=root",
    "-o",
    `Acquire::http::Proxy=${proxy}`,
    "-o",
    "Acquire::Languages=none",
    "-o",
    "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false",
  ];
}
