"""A third-party Powernode step written in Python, for the `log-only` world.

Build (bindings are generated on the fly, nothing generated is committed):

    componentize-py -d wit -w powernode:step/log-only componentize app \
        -p tests/guests/python -o /tmp/py-step.wasm

componentize-py maps the world to the `wit_world` package: the exported `handler`
interface is the `wit_world.exports.Handler` protocol, implemented here by a class that
must be named `Handler`; the imports are `wit_world.imports.log` and
`wit_world.imports.types`. Raising `Err(StepError_...)` from `run` returns the
WIT `result`'s error case.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, types

VERSION = "0.1.0"


class Handler(exports.Handler):
    def describe(self) -> types.StepInfo:
        schema = {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        }
        return types.StepInfo(
            name="hello_python",
            version=VERSION,
            summary="Greets config.name, from Python",
            config_schema=json.dumps(schema),
        )

    def run(self, ctx: types.StepContext) -> types.StepOutput:
        try:
            config = json.loads(ctx.config or "{}")
        except ValueError as e:
            raise Err(types.StepError_InvalidConfig(f"config is not JSON: {e}"))
        name = config.get("name") if isinstance(config, dict) else None
        if not isinstance(name, str) or not name:
            raise Err(types.StepError_InvalidConfig("`name` must be a non-empty string"))
        log.log(log.Level.INFO, f"python step {ctx.step} greeting {name} (run {ctx.run_id})")
        return types.StepOutput(
            raw_output=f"hello from python, {name}",
            outputs=[("name", name)],
        )
