"""Types of `powernode_step` (the helper in powernode_step.py), for editors and type checkers.

The WIT records (`Trigger`, `Repository`) come from the bindings componentize-py generates;
for your editor, write them beside your step with
`componentize-py -d wit -w powernode:step/log-only bindings .` (they are typed Python).
"""

from typing import Any, Callable, Mapping, Protocol, Sequence, Tuple, Type, Union

from wit_world.imports.types import Repository, Trigger

#: What an output may be: converted to its text by the helper (`None` is empty, booleans are
#: `true`/`false`, lists and dicts are JSON).
OutputValue = Union[str, int, float, bool, None, Sequence[Any], Mapping[str, Any]]

#: What `run` returns: the raw output, or the raw output and the named outputs.
RunResult = Union[OutputValue, Tuple[OutputValue, Mapping[str, OutputValue]]]

class Failed(Exception):
    """Ends the step as `failed` with exactly this message."""

class InvalidConfig(Exception):
    """Ends the step as `invalid_config` with this message."""

class Context:
    """What `run` gets: the host's step context with `config` parsed from JSON."""

    run_id: str
    pipeline: str
    step: str
    repository: Repository
    trigger: Trigger
    config: dict[str, Any]

class Step(Protocol):
    """A step class: its `describe()` facts as attributes, and `run`."""

    name: str
    version: str
    summary: str
    # Optional: a JSON Schema (as a dict) the host checks the step's `config` against.
    config_schema: Mapping[str, Any]

    def run(self, ctx: Context) -> RunResult: ...

def output_text(name: str, value: OutputValue) -> str:
    """`value` as a step output's text; raises `Failed` naming `name` when it has none."""

def handler(step_class: Callable[[], Step] | Type[Any]) -> type:
    """The `Handler` class componentize-py exports, running `step_class`."""
