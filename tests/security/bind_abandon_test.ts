/**
 * Attack: many clients start a BIND, send a byte (or not), then leave: by FIN, by FIN after a
 * byte, by reset after a byte. Each BIND holds a listener and a connection slot on the gateway
 * for `bind.wait` (120 s here) unless the gateway notices that its client left. The gateway
 * must release them as soon as the clients are gone: its active connections (the `/metrics`
 * gauge) go back to 0 and no BIND listener is left, checked by polling its state in a bounded
 * loop that ends long before the wait would.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest } from "../helpers/netns.ts";

const CLIENTS = 30;
const PROGRAMS = ["python3", "curl", "ss"];

/** Opens CLIENTS BINDs, checks each first reply, then leaves in three ways; prints the ports. */
const ATTACKER = `
import socket, struct, sys
gateway, count = sys.argv[1], int(sys.argv[2])
conns, ports = [], []
for i in range(count):
    c = socket.create_connection((gateway, 1080), timeout=10)
    c.sendall(b"\\x05\\x01\\x00")
    assert c.recv(2) == b"\\x05\\x00"
    c.sendall(b"\\x05\\x02\\x00\\x01" + bytes(4) + b"\\x00\\x00")
    reply = b""
    while len(reply) < 10:
        chunk = c.recv(10 - len(reply))
        assert chunk, "closed before the first reply"
        reply += chunk
    assert reply[1] == 0, reply
    ports.append(struct.unpack("!H", reply[8:10])[0])
    conns.append(c)
for i, c in enumerate(conns):
    if i % 3 == 0:
        c.close()
    elif i % 3 == 1:
        c.sendall(b"x")
        c.shutdown(socket.SHUT_WR)
    else:
        c.sendall(b"y")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
print(" ".join(map(str, ports)), flush=True)
`;

e2eTest(
  "security: BIND clients that leave during the wait release listeners and slots at once",
  async () => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-bind-abandon-" });
    try {
      await using gateway = await startDualgate(
        topo,
        [
          `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]`,
          'admin: { listen: "127.0.0.1:9090" }',
          "bind: { wait: 120 }",
          "",
        ].join("\n"),
        { dir },
      );
      await gateway.waitForTcp("127.0.0.1", 9090, { timeoutMs: 30_000 });
      const activeConnections = async () => {
        const r = await topo.run("gateway", "curl", ["-sS", "http://127.0.0.1:9090/metrics"], {
          check: true,
        });
        const match = /^dualgate_active_connections (\d+)$/m.exec(r.stdout);
        assert.ok(match, r.stdout);
        return Number(match[1]);
      };
      const bindListeners = async (ports: readonly number[]) => {
        const r = await topo.run("gateway", "ss", ["-Hltn"], { check: true });
        return ports.filter((port) => new RegExp(`:${port}\\s`).test(r.stdout));
      };

      const attack = await topo.run("client4", "python3", [
        "-c",
        ATTACKER,
        a.gateway.v4,
        String(CLIENTS),
      ], { timeoutMs: 60_000 });
      assert.equal(attack.code, 0, `attacker: ${attack.stderr}\ndualgate: ${gateway.stderr}`);
      const ports = attack.stdout.trim().split(" ").map(Number);
      assert.equal(ports.length, CLIENTS);

      // Bounded: 100 polls, a few seconds in all; bind.wait (120 s) would take far longer.
      let active = -1;
      let left: number[] = ports;
      for (let i = 0; i < 100; i++) {
        active = await activeConnections();
        left = await bindListeners(ports);
        if (active === 0 && left.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(active, 0, `active connections stay: ${gateway.stderr}`);
      assert.deepEqual(left, [], "BIND listeners stay open");
      assert.equal(
        (gateway.stderr.match(/client left during the wait/g) ?? []).length,
        CLIENTS,
        gateway.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
