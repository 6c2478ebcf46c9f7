// Types of powernode-step.js (the helper), for editors and `tsc --checkJs`.
/// <reference path="./wit.d.ts" />
import type { Repository, StepInfo, StepOutput, Trigger } from "powernode:step/types@0.1.3";

/** Ends the step as `failed` with exactly this message. */
export class Failed extends Error {}

/** Ends the step as `invalid_config` with this message. */
export class InvalidConfig extends Error {}

/** What an output may be: the helper turns it into text (objects and arrays as JSON). */
export type OutputValue = string | number | boolean | bigint | null | undefined | object;

/** What `run` gets: the host's context with `config` parsed from JSON. */
export interface Context<Config = Record<string, unknown>> {
  runId: string;
  pipeline: string;
  step: string;
  repository: Repository;
  trigger: Trigger;
  config: Config;
}

/** What `run` returns: the raw output, or it and named outputs. */
export type RunResult = OutputValue | { rawOutput: OutputValue; outputs?: Record<string, OutputValue> };

/** A step: its `describe()` facts and `run`. */
export interface StepDefinition<Config = Record<string, unknown>> {
  name: string;
  version: string;
  summary: string;
  /** A JSON Schema the host checks the step's `config` against. */
  configSchema?: object;
  run(ctx: Context<Config>): RunResult;
}

/** The `handler` export running `definition.run`. */
export function step<Config = Record<string, unknown>>(
  definition: StepDefinition<Config>,
): { describe(): StepInfo; run(ctx: unknown): StepOutput };

/** `value` as a step output's text; throws `Failed` naming `name` when it has none. */
export function outputText(name: string, value: OutputValue): string;
