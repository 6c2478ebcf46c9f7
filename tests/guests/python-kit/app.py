"""A Python step written with sdk/python's helper (`powernode_step`): what `mode` in its
config asks for is what the tests check — outputs converted, exceptions as `failed`."""

from powernode_step import handler
from wit_world.imports import log


class Kit:
    name = "python_kit"
    version = "0.1.0"
    summary = "Exercises the Python helper"
    config_schema = {"type": "object", "properties": {"mode": {"type": "string"}}}

    def run(self, ctx):
        mode = ctx.config.get("mode", "ok")
        log.log(log.Level.INFO, f"mode {mode} on a {ctx.trigger.event} event")
        if mode == "raise":
            raise ValueError("the answer was not 42")
        if mode == "bad_output":
            return "unused", {"fine": 1, "when": object()}
        return "done", {"count": 3, "ok": True, "items": ["a", "b"], "none": None}


Handler = handler(Kit)
