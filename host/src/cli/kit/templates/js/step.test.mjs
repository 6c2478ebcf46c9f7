// Runs the built `{{name}}.wasm` in Powernode's own host, as a pipeline would.
// `powernode plugin build` first, then `node --test`. Set POWERNODE to the `powernode`
// binary if it is not on PATH.
import { spawnSync } from "node:child_process";
import { strict as assert } from "node:assert";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const powernode = process.env.POWERNODE || "powernode";

function stepRun(config) {
  const wasm = join(here, "{{name}}.wasm");
  return spawnSync(powernode, ["step", "run", wasm, "--config", JSON.stringify(config)], {
    cwd: here,
    encoding: "utf8",
  });
}

test("greets by name and logs it", () => {
  const out = stepRun({ name: "Ada" });
  const said = `${out.stdout}${out.stderr}`;
  assert.equal(out.status, 0, said);
  assert.ok(said.includes("│ greeting Ada"), said);
  assert.ok(said.includes("= hello, Ada"), said);
  assert.ok(said.includes("→ {{name}}.length = 3"), said);
});
