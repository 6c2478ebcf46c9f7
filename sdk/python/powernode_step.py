"""A thin helper for Powernode steps written in Python with componentize-py.

Write a class with `name`, `version`, `summary`, optionally `config_schema` (a dict), and a
`run(self, ctx)` method; end the module with `Handler = handler(MyStep)`:

    from powernode_step import InvalidConfig, handler

    class Greet:
        name = "greet"
        version = "0.1.0"
        summary = "Greets config.name"
        config_schema = {"type": "object", "required": ["name"]}

        def run(self, ctx):
            if not ctx.config.get("name"):
                raise InvalidConfig("`name` must not be empty")
            return f"hello, {ctx.config['name']}", {"length": len(ctx.config["name"])}

    Handler = handler(Greet)

`run` gets `ctx` with `config` parsed from JSON (a dict), and `trigger`, `repository`,
`run_id`, `pipeline` and `step` as the host gave them. It returns the raw output (a str),
or `(raw_output, outputs)` with `outputs` a dict. What the helper does for you:

- an exception raised by `run` ends the step as `failed` with its message
  (`Failed("...")` for the message alone, `InvalidConfig("...")` for `invalid_config`);
  a host call's failure left unhandled (`Err` from `kv`, `artifacts`, ...) ends it as
  `failed` with the host's message (`provider` for a forge error);
- outputs are converted to strings (numbers, booleans as `true`/`false`, lists and dicts
  as JSON); a value that cannot be is a `failed` step naming the output.

Build with the helper on the path:
    componentize-py -d wit -w powernode:step/log-only componentize app -p . -p sdk/python -o step.wasm
"""

import json

from componentize_py_types import Err
from wit_world import exports

try:
    from wit_world.imports import types
except ImportError:
    # A world that also imports `wasi:http/types` (`full`) gets ours under its full name.
    from wit_world.imports import powernode_step_types as types


class Failed(Exception):
    """Ends the step as `failed` with exactly this message."""


class InvalidConfig(Exception):
    """Ends the step as `invalid_config` with this message."""


class Context:
    """What `run` gets: the host's step context with `config` parsed."""

    def __init__(self, ctx, config):
        self.run_id = ctx.run_id
        self.pipeline = ctx.pipeline
        self.step = ctx.step
        self.repository = ctx.repository
        self.trigger = ctx.trigger
        self.config = config


def output_text(name, value):
    """`value` as a step output's text; `Failed` naming `name` when it has none."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as e:
            raise Failed(f"output `{name}` cannot be written as JSON: {e}")
    raise Failed(
        f"output `{name}` is a {type(value).__name__}, which is not a step output: "
        "give a str, a number, a bool, a list or a dict"
    )


def _run(step, ctx):
    try:
        config = json.loads(ctx.config or "{}")
    except ValueError as e:
        raise InvalidConfig(f"step `{ctx.step}`: config is not JSON: {e}")
    result = step.run(Context(ctx, config))
    raw, outputs = result if isinstance(result, tuple) else (result, {})
    if not isinstance(outputs, dict):
        raise Failed(f"run returned {type(outputs).__name__} as outputs: return (raw_output, dict)")
    named = [(str(name), output_text(name, value)) for name, value in outputs.items()]
    return types.StepOutput(raw_output=output_text("raw_output", raw), outputs=named)


def _step_error(value):
    """An `Err` raised in `run` as the step's error: a host call's failure (its message, or a
    forge error) becomes `failed` (or `provider`); a step error raised on purpose is kept."""
    kind = type(value).__name__
    if kind.startswith("StepError_"):
        return value
    if kind.startswith("ProviderError_"):
        return types.StepError_Provider(value)
    return types.StepError_Failed(str(value))


def handler(step_class):
    """The `Handler` class componentize-py exports, running `step_class`."""
    step = step_class()

    class Handler(exports.Handler):
        def describe(self):
            schema = getattr(step, "config_schema", None)
            return types.StepInfo(
                name=step.name,
                version=step.version,
                summary=step.summary,
                config_schema=json.dumps(schema) if schema is not None else "",
            )

        def run(self, ctx):
            try:
                return _run(step, ctx)
            except Err as e:
                raise Err(_step_error(e.value))
            except InvalidConfig as e:
                raise Err(types.StepError_InvalidConfig(str(e)))
            except Failed as e:
                raise Err(types.StepError_Failed(str(e)))
            except Exception as e:  # noqa: BLE001 - every error becomes the step's verdict
                message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                raise Err(types.StepError_Failed(message))

    return Handler
