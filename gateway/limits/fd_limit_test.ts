import assert from "node:assert/strict";
import { capConnections, descriptorLimit, descriptorReserve } from "./fd_limit.ts";

Deno.test("descriptorLimit() reads the soft open files limit", async () => {
  const out = await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(descriptorLimit(), text === "unlimited" ? null : Number(text));
});

Deno.test("capConnections() keeps two descriptors per connection plus a reserve", () => {
  assert.equal(descriptorReserve(256), 64);
  assert.equal(descriptorReserve(20_000), 1000);
  assert.equal(capConnections(4096, 256), 96);
  assert.equal(capConnections(4096, 1024), 480);
  assert.equal(capConnections(100, 1024), 100);
  assert.equal(capConnections(4096, null), 4096);
  assert.equal(capConnections(4096, 10), 1);
});
