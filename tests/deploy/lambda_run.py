"""Running the unpacked Lambda zip as Lambda would: a fresh interpreter whose imports
come from the zip only, fed function-URL events, one handler per process (a container)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

DRIVER = """
import json, sys
task = sys.argv[1]
sys.path.insert(0, task)
from gatekeeper import lambda_handler
import botocore, cryptography, jwt
# Everything the handler runs comes from the zip, not from the test's virtualenv.
for module in (lambda_handler, botocore, cryptography, jwt):
    assert module.__file__.startswith(task), module.__file__
for line in sys.stdin:
    print(json.dumps(lambda_handler.handler(json.loads(line), None)), flush=True)
"""


class Container:
    """One Lambda container: the unpacked zip in its own interpreter, events in, answers out."""

    def __init__(self, python: str, task: Path, env: dict[str, str]):
        self.proc = subprocess.Popen([python, "-I", "-c", DRIVER, str(task)], cwd=task, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def __call__(self, event: dict) -> tuple[int, dict, dict]:
        self.proc.stdin.write(json.dumps(event) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()[-3000:]
        answer = json.loads(line)
        return answer["statusCode"], json.loads(answer["body"] or "null"), answer["headers"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
