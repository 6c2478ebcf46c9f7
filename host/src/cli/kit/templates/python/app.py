"""The step `{{name}}`: greets `config.name`.

Build with `powernode plugin build` (componentize-py, world `{{world}}`), test with
`python3 -m unittest` after building, try with
`powernode step run {{name}}.wasm --config '{"name": "Ada"}'`.
"""

from powernode_step import InvalidConfig, handler
from wit_world.imports import log


class {{type_name}}:
    name = "{{name}}"
    version = "0.1.0"
    summary = "Greets config.name"
    config_schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }

    def run(self, ctx):
        who = ctx.config["name"]
        if not who:
            raise InvalidConfig("`name` must not be empty")
        log.log(log.Level.INFO, f"greeting {who}")
        # An exception raised here ends the step as `failed` with its message.
        return f"hello, {who}", {"length": len(who)}


Handler = handler({{type_name}})
