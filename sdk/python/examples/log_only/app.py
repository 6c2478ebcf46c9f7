"""A step of the `log-only` world (imports `log` only): greets `config.name`.

Build from the repository's root:
    componentize-py -d wit -w powernode:step/log-only componentize app \\
        -p sdk/python/examples/log_only -p sdk/python -o greet.wasm
"""

from powernode_step import InvalidConfig, handler
from wit_world.imports import log


class Greet:
    name = "greet"
    version = "0.1.0"
    summary = "Greets config.name"
    config_schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

    def run(self, ctx):
        if not ctx.config["name"]:
            raise InvalidConfig("`name` must not be empty")
        log.log(log.Level.INFO, f"greeting {ctx.config['name']}")
        return f"hello, {ctx.config['name']}", {"length": len(ctx.config["name"])}


Handler = handler(Greet)
