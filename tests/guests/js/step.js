// A JavaScript step written with sdk/js's helper: what `mode` in its config asks for is what
// the tests check — outputs converted, a thrown Error as `failed`.
import { log } from "powernode:step/log@0.1.3";
import { step } from "../../../sdk/js/powernode-step.js";

export const handler = step({
  name: "js_step",
  version: "0.1.0",
  summary: "Exercises the JavaScript helper",
  configSchema: { type: "object", properties: { mode: { type: "string" } } },
  run(ctx) {
    const mode = ctx.config.mode || "ok";
    log("info", `mode ${mode} on a ${ctx.trigger.event} event`);
    if (mode === "throw") throw new Error("the answer was not 42");
    if (mode === "bad_output") return { rawOutput: "unused", outputs: { when: () => 1 } };
    return { rawOutput: "done", outputs: { count: 3, ok: true, items: ["a", "b"] } };
  },
});
