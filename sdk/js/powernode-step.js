// A thin helper for Powernode steps written in JavaScript with jco (componentize-js).
//
//   import { step, Failed, InvalidConfig } from "./powernode-step.js";
//   export const handler = step({
//     name: "greet", version: "0.1.0", summary: "Greets config.name",
//     configSchema: { type: "object", required: ["name"] },
//     run(ctx) {
//       if (!ctx.config.name) throw new InvalidConfig("`name` must not be empty");
//       return { rawOutput: `hello, ${ctx.config.name}`, outputs: { length: ctx.config.name.length } };
//     },
//   });
//
// `run` gets the host's context with `config` parsed from JSON; it returns a string (the raw
// output) or `{ rawOutput, outputs }` with `outputs` an object. An error thrown by `run` ends
// the step as `failed` with its message (without the helper, componentize-js cannot lower an
// `Error` as the WIT error and the step traps with "invalid variant tag"); outputs are
// converted to strings, and one that cannot be fails the step naming it.
//
// Build (the helper is bundled in; `-d http fetch-event` keeps wasi:http out of the imports):
//   jco componentize step.js --bundle -w wit -n powernode:step/log-only -d http fetch-event -o step.wasm

/** Ends the step as `failed` with exactly this message. */
export class Failed extends Error {}

/** Ends the step as `invalid_config` with this message. */
export class InvalidConfig extends Error {}

/** `value` as a step output's text; throws `Failed` naming `name` when it has none. */
export function outputText(name, value) {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (typeof value === "object") {
    try {
      return JSON.stringify(value);
    } catch (e) {
      throw new Failed(`output \`${name}\` cannot be written as JSON: ${e.message}`);
    }
  }
  throw new Failed(`output \`${name}\` is a ${typeof value}, which is not a step output`);
}

function verdict(e) {
  if (e instanceof InvalidConfig) return { tag: "invalid-config", val: e.message };
  if (e instanceof Failed) return { tag: "failed", val: e.message };
  if (e instanceof Error) return { tag: "failed", val: e.message ? `${e.name}: ${e.message}` : e.name };
  if (e && typeof e === "object" && "tag" in e) return e;
  return { tag: "failed", val: String(e) };
}

/** The `handler` export running `definition.run`. */
export function step(definition) {
  return {
    describe() {
      const schema = definition.configSchema;
      return {
        name: definition.name,
        version: definition.version,
        summary: definition.summary,
        configSchema: schema === undefined ? "" : JSON.stringify(schema),
      };
    },
    run(ctx) {
      try {
        let config;
        try {
          config = JSON.parse(ctx.config || "{}");
        } catch (e) {
          throw new InvalidConfig(`step \`${ctx.step}\`: config is not JSON: ${e.message}`);
        }
        const result = definition.run({ ...ctx, config });
        const { rawOutput, outputs } = typeof result === "object" && result !== null ? result : { rawOutput: result };
        const named = Object.entries(outputs || {}).map(([k, v]) => [k, outputText(k, v)]);
        return { rawOutput: outputText("rawOutput", rawOutput), outputs: named };
      } catch (e) {
        throw verdict(e);
      }
    },
  };
}
