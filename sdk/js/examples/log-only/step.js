// A step of the `log-only` world (imports `log` only): greets `config.name`.
// Build from the repository's root:
//   jco componentize sdk/js/examples/log-only/step.js --bundle -w wit -n log-only -d http fetch-event -o greet.wasm
import { log } from "powernode:step/log@0.1.3";
import { step, InvalidConfig } from "../../powernode-step.js";

export const handler = step({
  name: "greet",
  version: "0.1.0",
  summary: "Greets config.name",
  configSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  /** @param {import("../../powernode-step.js").Context<{ name: string }>} ctx */
  run(ctx) {
    if (!ctx.config.name) throw new InvalidConfig("`name` must not be empty");
    log("info", `greeting ${ctx.config.name}`);
    return { rawOutput: `hello, ${ctx.config.name}`, outputs: { length: ctx.config.name.length } };
  },
});
