// The step `{{name}}`: greets `config.name`.
//
// Build with `powernode plugin build` (jco componentize, world `{{world}}`), test with
// `node --test` after building, try with
// `powernode step run {{name}}.wasm --config '{"name": "Ada"}'`.
import { log } from "powernode:step/log@0.1.3";
import { step, InvalidConfig } from "./powernode-step.js";

export const handler = step({
  name: "{{name}}",
  version: "0.1.0",
  summary: "Greets config.name",
  configSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  /** @param {import("./powernode-step.js").Context<{ name: string }>} ctx */
  run(ctx) {
    const who = ctx.config.name;
    if (!who) throw new InvalidConfig("`name` must not be empty");
    log("info", `greeting ${who}`);
    // An Error thrown here ends the step as `failed` with its message.
    return { rawOutput: `hello, ${who}`, outputs: { length: who.length } };
  },
});
