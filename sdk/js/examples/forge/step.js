// A step of the `forge` world (imports `log`, `kv`, `templates`, `provider`, `git`; grant
// them all): counts the repository's runs in kv and says whether this one is a pull request's.
// Build from the repository's root:
//   jco componentize sdk/js/examples/forge/step.js --bundle -w wit -n forge -d http fetch-event -o visits.wasm
import { get, set } from "powernode:step/kv@0.1.3";
import { log } from "powernode:step/log@0.1.3";
import { step } from "../../powernode-step.js";

export const handler = step({
  name: "visits",
  version: "0.1.0",
  summary: "Counts the repository's runs in kv",
  run(ctx) {
    // A host error is thrown: the helper makes it a `failed` step with its message.
    const before = get("runs");
    const count = (before ? Number(new TextDecoder().decode(before)) : 0) + 1;
    set("runs", new TextEncoder().encode(String(count)));
    log("info", `run ${count} of ${ctx.repository.fullName || "a local run"}`);
    return { rawOutput: `run ${count}`, outputs: { count, pull_request: ctx.trigger.isPullRequest } };
  },
});
