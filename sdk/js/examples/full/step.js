// A step of the `full` world (imports every interface, `wasi:http` included; grant them
// all): keeps `config.text` as the run's artifact `report.txt`, made in memory.
// Build from the repository's root (`-d fetch-event` only: `fetch()` stays available):
//   jco componentize sdk/js/examples/full/step.js --bundle -w wit -n full -d fetch-event -o report.wasm
import { storeBytes } from "powernode:step/artifacts@0.1.3";
import { log } from "powernode:step/log@0.1.3";
import { step } from "../../powernode-step.js";

export const handler = step({
  name: "report",
  version: "0.1.0",
  summary: "Keeps config.text as the artifact report.txt",
  configSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  /** @param {import("../../powernode-step.js").Context<{ text: string }>} ctx */
  run(ctx) {
    // Over the run's artifact quota storeBytes throws: the step fails with its message.
    const kept = storeBytes("report.txt", new TextEncoder().encode(ctx.config.text));
    log("info", `kept ${kept.name} (${kept.size} bytes)`);
    return { rawOutput: kept.name, outputs: { size: kept.size, sha256: kept.sha256 } };
  },
});
