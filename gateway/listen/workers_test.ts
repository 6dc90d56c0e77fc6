import assert from "node:assert/strict";
import { parseConfig } from "../config/load.ts";
import { fixListenPorts, startWorkers, workerConfig } from "./workers.ts";

Deno.test("workerConfig() divides the connection limits, rounding up, and drops admin", () => {
  const config = parseConfig(`limits: { max_connections: 10, max_connections_per_client: 1 }
admin: { listen: "127.0.0.1:0" }
workers: 4
`);
  const share = workerConfig(config, 4);
  assert.equal(share.limits.maxConnections, 3);
  assert.equal(share.limits.maxConnectionsPerClient, 1);
  assert.equal(share.limits.authFailuresPerMinute, config.limits.authFailuresPerMinute);
  assert.equal(share.admin, null);
  assert.deepEqual(share.listen, config.listen);
});

Deno.test("fixListenPorts() gives port 0 a real port and keeps the others", () => {
  const config = parseConfig('listen: ["127.0.0.1:0", "127.0.0.1:1080"]');
  const fixed = fixListenPorts(config);
  assert.notEqual(fixed.listen[0]!.endpoint.port, 0);
  assert.equal(fixed.listen[1]!.endpoint.port, 1080);
  const again = parseConfig('listen: ["127.0.0.1:1080"]');
  assert.equal(fixListenPorts(again), again);
});

Deno.test("startWorkers() serves on one port from two workers and stops", async () => {
  const config = parseConfig(`listen: ["127.0.0.1:0"]
log: { level: error }
workers: 2
`);
  const pool = await startWorkers(config);
  try {
    assert.equal(pool.count, 2);
    assert.equal(pool.endpoints.length, 1);
    assert.notEqual(pool.endpoints[0]!.port, 0);
    const text = await pool.metrics();
    assert.match(text, /^dualgate_workers_up 2$/m);
    assert.match(text, /^dualgate_worker_connections_total\{worker="1"\} 0$/m);
  } finally {
    await pool.stop(0);
  }
});

Deno.test("startWorkers() fails when a worker cannot listen", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const config = parseConfig(`listen: ["127.0.0.1:${taken.addr.port}"]
log: { level: error }
workers: 2
`);
  await assert.rejects(startWorkers(config), /Cannot start worker \d/);
});
