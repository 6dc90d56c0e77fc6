/**
 * FTP across IP families end to end: dualgate (`main.ts serve` with `translators: [{ type:
 * ftp }]`) on the dual-stack gateway, real FTP servers (vsftpd, pyftpdlib) on the IPv6-only and
 * IPv4-only server hosts, real clients (curl with its own SOCKS support; lftp and Python ftplib
 * under `main.ts socksify`, i.e. proxychains4) on the IPv4-only and IPv6-only client hosts.
 *
 * The IPv6 vsftpd listens on IPv6 only (`listen=NO`, `listen_ipv6=YES`); the IPv4 vsftpd refuses
 * EPSV and EPRT (`cmds_denied=EPSV,EPRT`), so the gateway must fall back to PASV and PORT.
 *
 * lftp and ftplib also run in passive mode on the IPv6-only client: under proxychains4 a
 * program sees a fake IPv4 address for every name, so it speaks IPv4 FTP (PASV) over a SOCKS
 * connection the gateway sees as IPv6. The translator answers PASV with a 227 holding the IPv4
 * server's address and expects the SOCKS CONNECT to it. Two client-side quirks come from
 * proxychains4 swapping an IPv6 socket into the program's IPv4 one: lftp needs
 * `set ftp:bind-data-socket no` (binding an IPv4 socket to the IPv6 local address fails), and
 * ftplib needs `trust_server_pasv_ipv4_address = True`, as its default (connect to
 * `getpeername()` of an AF_INET socket object) reads a truncated IPv6 address and CONNECTs to
 * garbage. Active mode there is out of reach for such programs and not run: they listen on an
 * IPv4 socket the gateway cannot reach on an IPv6-only host (lftp cannot even bind it), and the
 * gateway refuses PORT on an IPv6 control connection.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MAIN_TS, REPO_ROOT, startDualgate } from "../helpers/dualgate.ts";
import {
  createTopology,
  e2eTest,
  type HostName,
  NAMES,
  type SpawnedProcess,
  type Topology,
} from "../helpers/netns.ts";
import { createRandomFile, type RandomFile, sha256File } from "../helpers/http_server.ts";

const MIB = 1024 * 1024;
const PROGRAMS = ["curl", "lftp", "vsftpd", "proxychains4"];
const VSFTPD_PORT = 21;
const PYFTPD_PORT = 2121;

/** A Python with pyftpdlib (Debian's python3-pyftpdlib lives in /usr/bin/python3's path). */
function pythonWithPyftpdlib(): string | null {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const out = new Deno.Command(python, {
        args: ["-c", "import pyftpdlib"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (out.success) return python;
    } catch { /* not there */ }
  }
  return null;
}

interface FtpServer {
  readonly label: string;
  readonly host: "server4" | "server6";
  readonly name: string;
  readonly port: number;
  /** The directory served (files to fetch at the top, uploads in `upload/`). */
  readonly root: string;
}

function vsftpdConfig(family: 4 | 6, address: string, root: string, log: string): string {
  return [
    ...(family === 6
      ? ["listen=NO", "listen_ipv6=YES", `listen_address6=${address}`]
      : ["listen=YES", "listen_ipv6=NO", `listen_address=${address}`, "cmds_denied=EPSV,EPRT"]),
    `listen_port=${VSFTPD_PORT}`,
    "background=NO",
    "anonymous_enable=YES",
    "local_enable=NO",
    "no_anon_password=YES",
    `anon_root=${root}`,
    "write_enable=YES",
    "anon_upload_enable=YES",
    "anon_other_write_enable=YES",
    "anon_umask=022",
    "pasv_enable=YES",
    "port_enable=YES",
    "connect_from_port_20=NO",
    "seccomp_sandbox=NO",
    "isolate=NO",
    "isolate_network=NO",
    "secure_chroot_dir=/var/run/vsftpd/empty",
    "ssl_enable=NO",
    "xferlog_enable=YES",
    `vsftpd_log_file=${log}`,
    "syslog_enable=NO",
    "",
  ].join("\n");
}

async function serverRoot(dir: string, label: string, file: RandomFile): Promise<string> {
  const root = `${dir}/${label}`;
  await Deno.mkdir(`${root}/upload`, { recursive: true });
  await Deno.copyFile(file.path, `${root}/${file.name}`);
  // vsftpd refuses a chroot its user can write to: the root is root's, upload/ is anyone's.
  await Deno.chmod(root, 0o755);
  await Deno.chmod(`${root}/upload`, 0o777);
  await Deno.chmod(`${root}/${file.name}`, 0o644);
  return root;
}

/** Everything one case may need for its failure message. */
function context(gateway: SpawnedProcess, r: { code: number; stdout: string; stderr: string }) {
  return `exit ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${
    r.stderr.slice(-4000)
  }\n--- dualgate stderr:\n${gateway.stderr.slice(-6000)}`;
}

/** Data CONNECTs from client6 that the translator expected (to the 227 address or the name). */
const EXPECTED_FROM_CLIENT6 =
  /\[2001:db8:1::2\]:\d+ \S+ connect (198\.51\.100\.2|v4\.dualgate\.example):\d+ .*\(expected by translator/g;

function expectedConnects(gateway: SpawnedProcess): number {
  return gateway.stderr.match(EXPECTED_FROM_CLIENT6)?.length ?? 0;
}

function proxyFor(topo: Topology, client: HostName): string {
  return client === "client4"
    ? `${topo.addresses.gateway.v4}:1080`
    : `[${topo.addresses.gateway.v6}]:1080`;
}

function gatewayUrl(topo: Topology, client: HostName): string {
  return `socks5://${proxyFor(topo, client)}`;
}

const FTPLIB_SCRIPT = `
import ftplib, hashlib, json, socket, sys
host, port, mode, upload_path, upload_name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out = {}
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=20)
if mode == "checks":
    # Before login: TLS cannot be translated.
    try:
        ftp.sendcmd("AUTH TLS"); out["auth"] = "accepted"
    except ftplib.error_perm as e:
        out["auth"] = str(e)
ftp.login()
if mode == "checks":
    def attempt(cmd):
        try:
            return ftp.sendcmd(cmd)
        except ftplib.all_errors as e:
            return str(e)
    out["bounce"] = attempt("PORT 10,1,2,3,200,1")
    me = ftp.sock.getsockname()[0].replace(".", ",")
    out["low_port"] = attempt("PORT " + me + ",0,25")
    out["epsv_all"] = attempt("EPSV ALL")
    out["pasv_after"] = attempt("PASV")
    out["port_after"] = attempt("PORT " + me + ",200,1")
    out["epsv_after"] = attempt("EPSV")
    ftp.close()
    print(json.dumps(out))
    sys.exit(0)
ftp.set_pasv(mode == "passive")
ftp.trust_server_pasv_ipv4_address = sys.argv[6:] == ["trust-pasv"]
digest = hashlib.sha256()
ftp.retrbinary("RETR big.bin", digest.update)
out["retr"] = digest.hexdigest()
with open(upload_path, "rb") as f:
    ftp.storbinary("STOR upload/" + upload_name, f)
names = []
ftp.retrlines("LIST", names.append)
out["list"] = names
tail = hashlib.sha256()
ftp.retrbinary("RETR big.bin", tail.update, rest=1000)
out["rest"] = tail.hexdigest()
ftp.quit()
print(json.dumps(out))
`;

e2eTest(
  "`main.ts serve` with the FTP translator carries real FTP clients across IP families",
  async (t) => {
    const python = pythonWithPyftpdlib();
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-ftp-" });
    await Deno.chmod(dir, 0o755);
    const processes: SpawnedProcess[] = [];
    try {
      const big = await createRandomFile(dir, { name: "big.bin", size: 4 * MIB });
      const upload = await createRandomFile(dir, { name: "upload.bin", size: 3 * MIB + 7 });
      const tail = await createRandomFile(dir, { name: "tail-ref.bin", size: 0 });
      await Deno.writeFile(tail.path, (await Deno.readFile(big.path)).subarray(1000));
      const tailSha = await sha256File(tail.path);
      await Deno.writeTextFile(`${dir}/ftplib_client.py`, FTPLIB_SCRIPT);

      const servers: FtpServer[] = [];
      for (const family of [6, 4] as const) {
        const host = family === 6 ? "server6" : "server4";
        const address = family === 6 ? topo.addresses.server6.v6 : topo.addresses.server4.v4;
        const name = family === 6 ? NAMES.v6 : NAMES.v4;
        const label = `vsftpd${family}`;
        const root = await serverRoot(dir, label, big);
        const conf = `${dir}/${label}.conf`;
        await Deno.writeTextFile(conf, vsftpdConfig(family, address, root, `${dir}/${label}.log`));
        const vsftpd = topo.spawn(host, "vsftpd", [conf]);
        processes.push(vsftpd);
        await vsftpd.waitForTcp(address, VSFTPD_PORT);
        servers.push({ label, host, name, port: VSFTPD_PORT, root });
        if (python) {
          const label = `pyftpdlib${family}`;
          const root = await serverRoot(dir, label, big);
          const pyftpd = topo.spawn(host, python, [
            "-m",
            "pyftpdlib",
            "-i",
            address,
            "-p",
            String(PYFTPD_PORT),
            "-w",
            "-d",
            root,
          ]);
          processes.push(pyftpd);
          await pyftpd.waitForTcp(address, PYFTPD_PORT);
          servers.push({ label, host, name, port: PYFTPD_PORT, root });
        }
      }

      await using gateway = await startDualgate(
        topo,
        `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
translators:
  - { type: ftp, ports: [${VSFTPD_PORT}, ${PYFTPD_PORT}], data_timeout: 20 }
`,
        { dir },
      );

      const curl = (client: HostName, args: string[]) =>
        topo.run(client, "curl", [
          "-sS",
          "--fail",
          "--connect-timeout",
          "5",
          "--max-time",
          "30",
          "--socks5-hostname",
          proxyFor(topo, client),
          ...args,
        ], { timeoutMs: 40_000 });

      let uploads = 0;
      for (const server of servers) {
        const client: HostName = server.host === "server6" ? "client4" : "client6";
        const base = `ftp://${server.name}:${server.port}`;
        const modes = [
          ["default (EPSV)", []],
          ["--disable-epsv (PASV)", ["--disable-epsv"]],
          ["--ftp-port - (EPRT/PORT)", ["--ftp-port", "-"]],
        ] as const;
        for (const [mode, flags] of modes) {
          await t.step(
            `${client} curl ${mode} → ${server.label}: RETR, STOR, LIST, REST`,
            async () => {
              const out = `${dir}/${server.label}-${uploads}.bin`;
              const r = await curl(client, [...flags, `${base}/big.bin`, "-o", out]);
              assert.equal(r.code, 0, `RETR: ${context(gateway, r)}`);
              assert.equal(await sha256File(out), big.sha256, "RETR digest");

              const stored = `curl-${uploads++}.bin`;
              const s = await curl(client, [
                ...flags,
                "-T",
                upload.path,
                `${base}/upload/${stored}`,
              ]);
              assert.equal(s.code, 0, `STOR: ${context(gateway, s)}`);
              assert.equal(await sha256File(`${server.root}/upload/${stored}`), upload.sha256);

              const l = await curl(client, [...flags, `${base}/`]);
              assert.equal(l.code, 0, `LIST: ${context(gateway, l)}`);
              assert.match(l.stdout, /big\.bin/, `LIST: ${context(gateway, l)}`);

              const restOut = `${out}.tail`;
              const rest = await curl(client, [
                ...flags,
                "-r",
                "1000-",
                `${base}/big.bin`,
                "-o",
                restOut,
              ]);
              assert.equal(rest.code, 0, `REST: ${context(gateway, rest)}`);
              assert.equal(await sha256File(restOut), tailSha, "REST digest");
            },
          );
        }
      }

      const v6vsftpd = servers.find((s) => s.label === "vsftpd6")!;
      await t.step(
        "client4 curl: AUTH TLS gets 534 (--ssl goes on in clear, --ssl-reqd fails)",
        async () => {
          const base = `ftp://${v6vsftpd.name}:${v6vsftpd.port}`;
          const out = `${dir}/ssl.bin`;
          const r = await curl("client4", ["-v", "--ssl", `${base}/big.bin`, "-o", out]);
          assert.equal(r.code, 0, context(gateway, r));
          assert.match(r.stderr, /< 534 /, context(gateway, r));
          assert.equal(await sha256File(out), big.sha256);
          const reqd = await curl("client4", ["--ssl-reqd", `${base}/big.bin`, "-o", out]);
          assert.equal(reqd.code, 64, context(gateway, reqd));
        },
      );

      const socksify = (client: HostName, command: string[]) =>
        topo.run(client, Deno.execPath(), [
          "run",
          "-A",
          MAIN_TS,
          "socksify",
          "--gateway",
          gatewayUrl(topo, client),
          "--",
          ...command,
        ], { timeoutMs: 60_000, cwd: REPO_ROOT, env: { NO_COLOR: "1" } });

      for (const server of servers) {
        const client: HostName = server.host === "server6" ? "client4" : "client6";
        // Active mode on client6 is out of reach: see the module doc.
        for (const passive of client === "client4" ? [true, false] : [true]) {
          const mode = passive ? "passive (PASV)" : "active (PORT)";
          await t.step(`${client} lftp ${mode} under socksify → ${server.label}`, async () => {
            const before = expectedConnects(gateway);
            const out = `${dir}/lftp-${server.label}-${passive}.bin`;
            const stored = `lftp-${passive}.bin`;
            const r = await socksify(client, [
              "lftp",
              "-c",
              [
                "set cmd:fail-exit yes",
                // The fake IPv4 addresses of proxychains4: no AAAA lookups.
                "set dns:order inet",
                "set ftp:ssl-allow no",
                "set net:max-retries 1",
                "set net:timeout 15",
                `set ftp:passive-mode ${passive ? "on" : "off"}`,
                // On client6 the control socket is really IPv6 (proxychains4 swaps it in), so
                // binding an IPv4 data socket to its local address fails.
                ...(client === "client6" ? ["set ftp:bind-data-socket no"] : []),
                `open -u anonymous,x -p ${server.port} ftp://${server.name}`,
                `get big.bin -o ${out}`,
                `put ${upload.path} -o upload/${stored}`,
                "cls -1",
              ].join("; "),
            ]);
            assert.equal(r.code, 0, context(gateway, r));
            assert.equal(await sha256File(out), big.sha256);
            assert.equal(await sha256File(`${server.root}/upload/${stored}`), upload.sha256);
            assert.match(r.stdout, /big\.bin/, context(gateway, r));
            if (client === "client6") {
              // RETR and STOR at least went through the expectation, not a refused PASV.
              assert.ok(expectedConnects(gateway) >= before + 2, context(gateway, r));
            }
          });
        }
        if (!python) continue;
        // ftplib's PORT on client6 names an AF_INET listener the gateway cannot reach.
        for (const mode of client === "client4" ? ["passive", "active"] : ["passive"]) {
          await t.step(`${client} ftplib ${mode} under socksify → ${server.label}`, async () => {
            const before = expectedConnects(gateway);
            const stored = `ftplib-${mode}.bin`;
            const r = await socksify(client, [
              python,
              `${dir}/ftplib_client.py`,
              server.name,
              String(server.port),
              mode,
              upload.path,
              stored,
              // See the module doc: on client6 only the 227 address leads to the gateway.
              ...(client === "client6" ? ["trust-pasv"] : []),
            ]);
            assert.equal(r.code, 0, context(gateway, r));
            const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
            assert.equal(out.retr, big.sha256);
            assert.equal(out.rest, tailSha);
            assert.ok(out.list.some((line: string) => line.includes("big.bin")), r.stdout);
            assert.equal(await sha256File(`${server.root}/upload/${stored}`), upload.sha256);
            if (client === "client6") {
              // RETR and STOR at least went through the expectation, not a refused PASV.
              assert.ok(expectedConnects(gateway) >= before + 2, context(gateway, r));
            }
          });
        }
      }

      if (python) {
        await t.step(
          "client4 ftplib: bounce PORT, low port, EPSV ALL and AUTH TLS are answered by the gateway",
          async () => {
            const r = await socksify("client4", [
              python,
              `${dir}/ftplib_client.py`,
              v6vsftpd.name,
              String(v6vsftpd.port),
              "checks",
              upload.path,
              "-",
            ]);
            assert.equal(r.code, 0, context(gateway, r));
            const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
            const show = `${JSON.stringify(out)}\n${context(gateway, r)}`;
            assert.match(out.auth, /^534 /, show);
            assert.match(out.bounce, /^501 /, show);
            assert.match(out.low_port, /^504 /, show);
            assert.match(out.epsv_all, /^200 /, show);
            assert.match(out.pasv_after, /^501 /, show);
            assert.match(out.port_after, /^501 /, show);
            assert.match(out.epsv_after, /^229 /, show);
          },
        );
      } else {
        await t.step({
          name: "ftplib and pyftpdlib cases skipped: no Python with pyftpdlib (python3-pyftpdlib)",
          ignore: true,
          fn() {},
        });
      }
    } finally {
      for (const process of processes.reverse()) await process[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
