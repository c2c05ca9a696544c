"""How big is the gatekeeper? Code lines per module: not blank, not a comment, not
a docstring. Prints every module, the trust kernel (what a security reviewer reads
first: errors, paths, config, grants, acl, approvals, identity, app; DESIGN.md's
aim names the six without the customer's keys over the grant, approvals and
identity, which came later: both sums are printed) and the whole, with the targets.

    .venv/bin/python bench/loc.py        (or: make loc)
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gatekeeper"
KERNEL = ("errors", "paths", "config", "grants", "acl", "approvals", "identity", "app")
DESIGN_KERNEL = ("errors", "paths", "config", "grants", "acl", "app")  # DESIGN.md's aim
TARGET_ALL, TARGET_KERNEL = 1800, 1000


def code_lines(source: str) -> int:
    """Lines holding a token that is not a comment, outside docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines: set[int] = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING)
    for token in tokenize.tokenize(io.BytesIO(source.encode()).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def measure(package: Path = PACKAGE) -> dict[str, int]:
    return {path.stem: code_lines(path.read_text()) for path in sorted(package.glob("*.py"))}


def main() -> int:
    sizes = measure(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
    for name, count in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"  {name + '.py':22} {count:5}{'  (trust kernel)' if name in KERNEL else ''}")
    kernel = sum(count for name, count in sizes.items() if name in KERNEL)
    total = sum(sizes.values())
    design = sum(count for name, count in sizes.items() if name in DESIGN_KERNEL)
    print(f"trust kernel: {kernel} code lines; without approvals and identity (DESIGN.md's six) {design}"
          f" (target under {TARGET_KERNEL})")
    print(f"gatekeeper:   {total} code lines (target under {TARGET_ALL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
