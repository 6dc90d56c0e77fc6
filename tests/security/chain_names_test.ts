/**
 * Attack suite: names on a chained route (red-team F2 follow-up, item 4).
 *
 * A chained route forwards the name to the hop unresolved. A name that is not a valid host name
 * (`secret.example..`) used to carry no name in the rule subject, so `deny to: [secret.example]`
 * did not match it and it was forwarded as written, for the hop (possibly not a dualgate) to
 * read as it likes. Now such a name is refused with REP 4 before rules or hops see it, and a
 * valid name is forwarded in the normalised form the rules judged.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest } from "../helpers/netns.ts";
import { dst, gateway, gatewayFor, probe, PROGRAMS } from "./_helpers.ts";

/** A SOCKS5 hop that says yes to everything and prints each name it is asked for. */
const RECORDING_HOP = `
import socket, sys, threading
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
def serve(c):
    try:
        c.recv(3)
        c.sendall(b"\\x05\\x00")
        head = c.recv(4)
        n = c.recv(1)[0]
        name = c.recv(n + 2)[:n]
        print("asked " + name.decode("latin-1"), flush=True)
        c.sendall(b"\\x05\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00HOP\\n")
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,)).start()
`;

e2eTest("security: a chained route neither forwards invalid names nor raw ones", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-chainnames-" });
  try {
    const hopAddress = topo.addresses.server4.v4;
    await using hop = topo.spawn("server4", "python3", ["-c", RECORDING_HOP, hopAddress, "1080"]);
    await topo.waitForTcp("server4", hopAddress, 1080);
    const gw = topo.addresses.gateway;
    await using _gateway = await gateway(
      topo,
      dir,
      `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]
rules:
  - { action: deny, to: ["secret.example"] }
  - { action: allow }
routes:
  - chain: ["socks5://${hopAddress}:1080"]
`,
    );
    for (const client of ["client4", "client6"] as const) {
      const connect = (name: string) =>
        probe(topo, client, {
          mode: "connect",
          gateway: gatewayFor(topo, client),
          target: dst(name, 80),
        });
      await t.step(`${client}: an invalid spelling of a denied name is REP 4`, async () => {
        for (const name of ["secret.example..", "..secret.example", "secret..example"]) {
          const outcome = await connect(name);
          assert.equal(outcome.rep, 4, `${name}: ${JSON.stringify(outcome)}`);
        }
      });
      await t.step(`${client}: a valid spelling of a denied name is REP 2`, async () => {
        const outcome = await connect("SECRET.Example.");
        assert.equal(outcome.rep, 2, JSON.stringify(outcome));
      });
      await t.step(`${client}: an allowed name reaches the hop normalised`, async () => {
        const outcome = await connect("WWW.Example.");
        assert.equal(outcome.rep, 0, JSON.stringify(outcome));
        assert.equal(outcome.data?.trim(), "HOP");
      });
    }
    await t.step("the hop was asked only for the normalised allowed name", async () => {
      const asked = () => hop.stdout.split("\n").filter((line) => line.startsWith("asked "));
      // The hop prints before it answers; wait (bounded) for the capture to catch up.
      for (let i = 0; i < 100 && asked().length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(asked(), ["asked www.example", "asked www.example"], hop.stdout);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
