"""This tree's benchmarks against an earlier commit's code, in the same run.

Checks REV out into a temporary worktree, copies this tree's bench/ scripts into
it (so both sides run the very same measurements), then runs each benchmark on
both sides in turn and prints both outputs, and a table: every figure of a line
both outputs share that differs: the earlier value, this tree's, and their ratio.

    .venv/bin/python bench/compare.py [--rev HEAD~1] [--bench bench_sign.py] [-- extra args]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BENCHES = ["bench_sign.py", "bench_audit_search.py"]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def run(tree: Path, bench: str, extra: list[str]) -> str:
    result = subprocess.run([sys.executable, f"bench/{bench}", *extra], cwd=tree,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{bench} failed in {tree}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def figures(output: str) -> dict[str, list[float]]:
    """Each line's numbers, keyed by the line with its numbers blanked out."""
    out = {}
    for line in output.splitlines():
        numbers = [float(n.replace(",", "")) for n in NUMBER.findall(line)]
        if numbers:
            out[NUMBER.sub("#", line).strip()] = numbers
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev", default="HEAD~1")
    parser.add_argument("--bench", action="append")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dualkey-bench-base-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.rev], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        os.symlink(ROOT / ".venv", base / ".venv")
        for script in (ROOT / "bench").glob("*.py"):
            shutil.copy(script, base / "bench" / script.name)
        for bench in args.bench or DEFAULT_BENCHES:
            before, after = run(base, bench, args.extra), run(ROOT, bench, args.extra)
            print(f"######## {bench} at {args.rev} ########\n{before}")
            print(f"######## {bench} in this tree ########\n{after}")
            old, new = figures(before), figures(after)
            print(f"######## {bench}: {args.rev} -> this tree (each figure that differs) ########")
            for label, numbers in new.items():
                pairs = [(a, b) for a, b in zip(old.get(label, []), numbers) if a != b and a]
                if pairs:
                    changes = "  ".join(f"{a:g} -> {b:g} (x{b / a:.2f})" for a, b in pairs)
                    print(f"{label[:60]:<60} {changes}")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
