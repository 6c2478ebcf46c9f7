"""A step of the `full` world (imports every interface, `wasi:http` included; grant them
all): keeps `config.text` as the run's artifact `report.txt`, made in memory.

Build from the repository's root:
    componentize-py -d wit -w powernode:step/full componentize app \\
        -p sdk/python/examples/full -p sdk/python -o report.wasm
"""

from powernode_step import handler
from wit_world.imports import artifacts, log


class Report:
    name = "report"
    version = "0.1.0"
    summary = "Keeps config.text as the artifact report.txt"
    config_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    def run(self, ctx):
        # Over the run's artifact quota, store_bytes raises Err: the step fails with its message.
        kept = artifacts.store_bytes("report.txt", ctx.config["text"].encode())
        log.log(log.Level.INFO, f"kept {kept.name} ({kept.size} bytes)")
        return kept.name, {"size": kept.size, "sha256": kept.sha256}


Handler = handler(Report)
