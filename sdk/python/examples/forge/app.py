"""A step of the `forge` world (imports `log`, `kv`, `templates`, `provider`, `git`; grant
them all): counts the repository's runs in kv and says whether this one is a pull request's.

Build from the repository's root:
    componentize-py -d wit -w powernode:step/forge componentize app \\
        -p sdk/python/examples/forge -p sdk/python -o visits.wasm
"""

from powernode_step import handler
from wit_world.imports import kv, log


class Visits:
    name = "visits"
    version = "0.1.0"
    summary = "Counts the repository's runs in kv"

    def run(self, ctx):
        # kv.get raises componentize_py_types.Err on a host error: the helper makes it `failed`.
        count = int((kv.get("runs") or b"0").decode()) + 1
        kv.set("runs", str(count).encode())
        where = ctx.repository.full_name or "a local run"
        log.log(log.Level.INFO, f"run {count} of {where}")
        return f"run {count}", {"count": count, "pull_request": ctx.trigger.is_pull_request}


Handler = handler(Visits)
