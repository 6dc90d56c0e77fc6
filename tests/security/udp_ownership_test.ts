/**
 * Attack: taking over a UDP association. The client asks with DST `0.0.0.0:0` (or `[::]:0`), so
 * the gateway cannot know its UDP port in advance. Another socket of the client's own host (a
 * second program, another port) and a datagram crafted on a raw socket with the client's
 * address and a made-up source port must neither be relayed nor steal the replies: the
 * association belongs to the endpoint of the first datagram. The legitimate sender keeps
 * working throughout.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type SpawnedProcess } from "../helpers/netns.ts";

const ECHO_PORT = 7;

/** A UDP echo server that prints every payload it gets, one per line. */
function echoServer(family: 4 | 6): string {
  return [
    "import socket",
    `s = socket.socket(socket.AF_INET${family === 6 ? "6" : ""}, socket.SOCK_DGRAM)`,
    `s.bind(("${family === 6 ? "::" : "0.0.0.0"}", ${ECHO_PORT}))`,
    'print("ready", flush=True)',
    "while True:",
    "    d, a = s.recvfrom(65535)",
    '    print("got", d.decode(errors="replace"), flush=True)',
    "    s.sendto(d, a)",
  ].join("\n");
}

/**
 * The client and the attacker, on the client host: a SOCKS5 UDP ASSOCIATE with a wildcard
 * DST, "hello-1" from the main socket, "takeover" from a second socket of the same address,
 * "spoofed" from a raw socket with another source port, then "hello-2" from the main socket.
 * Prints what each receiving socket got, as JSON.
 */
const CLIENT = String.raw`
import json, select, socket, struct, sys

proxy, proxy_port, dest, dest_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
fam = socket.AF_INET6 if ":" in proxy else socket.AF_INET

def recvn(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk: raise SystemExit("control connection closed")
        b += chunk
    return b

control = socket.create_connection((proxy, proxy_port), timeout=10)
own = control.getsockname()[0]
control.sendall(b"\x05\x01\x00")
assert recvn(control, 2) == b"\x05\x00"
wild = (b"\x04" + bytes(16)) if fam == socket.AF_INET6 else (b"\x01" + bytes(4))
control.sendall(b"\x05\x03\x00" + wild + b"\x00\x00")
head = recvn(control, 4)
assert head[1] == 0, "UDP ASSOCIATE refused: %d" % head[1]
bound = recvn(control, 4 if head[3] == 1 else 16)
relay = (socket.inet_ntop(socket.AF_INET if head[3] == 1 else socket.AF_INET6, bound),
         struct.unpack(">H", recvn(control, 2))[0])

dest_fam = socket.AF_INET6 if ":" in dest else socket.AF_INET
dest_bytes = (b"\x04" if dest_fam == socket.AF_INET6 else b"\x01") + socket.inet_pton(dest_fam, dest)
def frame(text):
    return b"\x00\x00\x00" + dest_bytes + struct.pack(">H", dest_port) + text.encode()

def sock():
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((own, 0))
    return s

def replies(s, count, seconds):
    got = []
    while len(got) < count:
        ready, _, _ = select.select([s], [], [], seconds)
        if not ready: break
        got.append(s.recv(65535)[3 + len(dest_bytes) + 2:].decode())
    return got

main, other = sock(), sock()
main.sendto(frame("hello-1"), relay)
got_main = replies(main, 1, 10)
other.sendto(frame("takeover"), relay)
got_other = replies(other, 1, 2)

# A datagram crafted with the client's own address and a source port nobody has bound.
ports = {main.getsockname()[1], other.getsockname()[1]}
spoof_port = next(p for p in range(40001, 40010) if p not in ports)
raw = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_UDP)
if fam == socket.AF_INET6:
    raw.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM: the kernel fills the UDP checksum
raw.bind((own, 0))
payload = frame("spoofed")
raw.sendto(struct.pack(">HHHH", spoof_port, relay[1], 8 + len(payload), 0) + payload, (relay[0], 0))

main.sendto(frame("hello-2"), relay)
got_main += replies(main, 1, 10)
got_other += replies(other, 1, 0.5)
print(json.dumps({"main": got_main, "other": got_other, "spoof_port": spoof_port}))
control.close()
`;

async function waitFor(what: string, check: () => boolean, text: () => string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!check() && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(check(), `no ${what}:\n${text()}`);
}

e2eTest(
  "UDP ASSOCIATE with a wildcard DST belongs to the first sender: another port or a spoofed one cannot take it over",
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "dualgate-udp-owner-" });
    try {
      await using topo = await createTopology();
      const a = topo.addresses;
      const echo: Record<4 | 6, SpawnedProcess> = {
        4: topo.spawn("server4", "python3", ["-c", echoServer(4)]),
        6: topo.spawn("server6", "python3", ["-c", echoServer(6)]),
      };
      await using _echo4 = echo[4];
      await using _echo6 = echo[6];
      for (const process of Object.values(echo)) {
        await waitFor(
          "ready echo server",
          () => process.stdout.includes("ready"),
          () => process.stderr,
        );
      }
      await using gateway = await startDualgate(
        topo,
        `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]\n`,
        { dir },
      );
      const cases = [
        { host: "client4", proxy: a.gateway.v4, dest: a.server6.v6, family: 6 },
        { host: "client6", proxy: a.gateway.v6, dest: a.server4.v4, family: 4 },
      ] as const;
      for (const c of cases) {
        await t.step(
          `${c.host} keeps its association; the attacker's datagrams go nowhere`,
          async () => {
            const records = () => (gateway.stderr.match(/relayed .* udp .*\n/g) ?? []).length;
            const before = records();
            const r = await topo.run(c.host, "python3", [
              "-c",
              CLIENT,
              c.proxy,
              "1080",
              c.dest,
              String(ECHO_PORT),
            ], { timeoutMs: 30_000 });
            assert.equal(r.code, 0, `client: ${r.stderr}\ndualgate: ${gateway.stderr}`);
            const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
            const seen = echo[c.family].stdout.split("\n").filter((l) => l.startsWith("got "));
            assert.ok(!seen.includes("got spoofed"), `the spoofed datagram was relayed: ${seen}`);
            assert.ok(
              !seen.includes("got takeover"),
              `another port's datagram was relayed: ${seen}`,
            );
            assert.deepEqual(result.other, [], "another port got replies");
            assert.deepEqual(result.main, ["hello-1", "hello-2"], "the owner lost its replies");
            await waitFor(
              "record of the association",
              () => records() > before,
              () => gateway.stderr,
            );
            const line = (gateway.stderr.match(/relayed .* udp .*\n/g) ?? []).at(-1) ?? "";
            assert.match(line, /foreign=2/, "both foreign datagrams were counted");
          },
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["python3"] },
);
