"""Runs the built `{{name}}.wasm` in Powernode's own host, as a pipeline would.

`powernode plugin build` first, then `python3 -m unittest`. Set POWERNODE to the
`powernode` binary if it is not on PATH.
"""

import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
POWERNODE = os.environ.get("POWERNODE", "powernode")


def step_run(config):
    """`powernode step run` on the built component with `config`."""
    return subprocess.run(
        [POWERNODE, "step", "run", os.path.join(HERE, "{{name}}.wasm"), "--config", json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=HERE,
    )


class StepTest(unittest.TestCase):
    def test_greets_by_name_and_logs_it(self):
        out = step_run({"name": "Ada"})
        said = out.stdout + out.stderr
        self.assertEqual(out.returncode, 0, said)
        self.assertIn("│ greeting Ada", said)
        self.assertIn("= hello, Ada", said)
        self.assertIn("→ {{name}}.length = 3", said)


if __name__ == "__main__":
    unittest.main()
