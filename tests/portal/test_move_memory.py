"""The worker streams: a 100 MiB object moves (through both gatekeepers, verified,
erased at the source) with under 50 MB growth of the worker's resident memory.
Measured in a fresh process by bench/bench_move.py's memory run (peak resident
size reset just before the move, read just after)."""

from __future__ import annotations

import json
import os
import subprocess

from tests import support


def test_a_100_mib_object_moves_with_under_50_mb_growth(moto_url):
    run = subprocess.run([support.PYTHON, "bench/bench_move.py", "--memory", moto_url, "--big-mb", "100"],
                         cwd=support.ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **support.AWS_ENV})
    assert run.returncode == 0, run.stdout + run.stderr
    memory = json.loads(run.stdout.strip().splitlines()[-1])
    assert 0 < memory["growth"] < 50_000_000, memory
