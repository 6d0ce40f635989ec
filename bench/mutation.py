"""Mutation check: do the tests notice when retrieval.py or signals.py is wrong?

Each mutant changes one thing in a copy of the package - a comparison flipped
(< to >=, == to !=), an arithmetic operator swapped (+ to -, * to /), `and` to `or`,
a `not` dropped, min to max, a boolean flipped, a number changed (int + 1, float x 1.5)
- and the tests that cover the file run against it. A mutant the tests still pass
"survives": either the tests miss that behaviour or the change makes no difference
(an equivalent mutant). The survivors are listed, then counted.

Usage: .venv/bin/python bench/mutation.py [--file mlsd_bot/retrieval.py ...] [--limit N]
Runs in a temporary copy of the project; the working tree is never touched.
"""

from __future__ import annotations

import argparse
import ast
import copy
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each file and the in-process tests that cover it (subprocess tests would import the real package).
TARGETS = {
    "mlsd_bot/retrieval.py": ["tests/test_retrieval.py"],
    "mlsd_bot/signals.py": ["tests/test_signals.py", "tests/test_llm_detect.py"],
}
TIMEOUT_S = 600  # a mutant that hangs the tests counts as caught
NEGATE = {ast.Lt: ast.GtE, ast.LtE: ast.Gt, ast.Gt: ast.LtE, ast.GtE: ast.Lt, ast.Eq: ast.NotEq,
          ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
        ast.Pow: ast.Mult}


@dataclass(frozen=True)
class Mutant:
    index: int  # which mutable spot of the file, in ast.walk order
    line: int
    what: str


def _spots(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every node a mutant can change, with what the change is."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    annotations = {id(x) for n in ast.walk(tree) for a in ("annotation", "returns")
                   if getattr(n, a, None) is not None for x in ast.walk(getattr(n, a))}
    out = []
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in annotations:
            continue
        if isinstance(node, ast.Compare):
            out += [(node, f"{type(op).__name__} -> {NEGATE[type(op)].__name__}") for op in node.ops if type(op) in NEGATE]
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP and not _on_text(node):
            out.append((node, f"{type(node.op).__name__} -> {SWAP[type(node.op)].__name__}"))
        elif isinstance(node, ast.BoolOp):
            out.append((node, f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append((node, f"drop {type(node.op).__name__}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            out.append((node, f"{node.func.id} -> {'max' if node.func.id == 'min' else 'min'}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append((node, f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            out.append((node, f"{node.value} -> {_changed(node.value)}"))
    return out


def _on_text(node: ast.AST) -> bool:
    """`path / "name"`, `"a" + b`: swapping these only makes a TypeError, which proves nothing."""
    sides = [getattr(node, a, None) for a in ("left", "right", "value")]
    return any(isinstance(x, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(x, "value", ""), str)
               for x in sides)


def _changed(value: int | float) -> int | float:
    if isinstance(value, int):
        return value + 1
    return round(value * 1.5, 6) if value else 0.1


class _Apply(ast.NodeTransformer):
    """Change spot number `target` of a copy of the tree (each op of a Compare is its own spot)."""

    def __init__(self, target: int):
        self.target = target
        self.node: ast.AST | None = None

    def mutate(self, tree: ast.AST) -> ast.AST:
        tree = copy.deepcopy(tree)
        spots = _spots(tree)
        self.node = spots[self.target][0]
        nth = [i for i, (n, _) in enumerate(spots) if n is self.node].index(self.target)
        return ast.fix_missing_locations(self.visit(tree) if isinstance(self.node, ast.UnaryOp)
                                         else self._in_place(tree, nth))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node = self.generic_visit(node)
        return node.operand if node is self.node else node  # `not x` -> `x`, `-x` -> `x`

    def _in_place(self, tree: ast.AST, nth: int) -> ast.AST:
        node = self.node
        if isinstance(node, ast.Compare):
            i = [j for j, op in enumerate(node.ops) if type(op) in NEGATE][nth]
            node.ops[i] = NEGATE[type(node.ops[i])]()
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            node.op = SWAP[type(node.op)]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.Call):
            node.func.id = "max" if node.func.id == "min" else "min"
        elif isinstance(node, ast.Constant):
            node.value = (not node.value) if isinstance(node.value, bool) else _changed(node.value)
        return tree


def mutants(source: str) -> list[Mutant]:
    return [Mutant(i, getattr(n, "lineno", 0), what) for i, (n, what) in enumerate(_spots(ast.parse(source)))]


def _workspace(tmp: Path) -> Path:
    """A copy of the package and tests; knowledge, prompts and the venv linked, not copied."""
    shutil.copytree(ROOT / "mlsd_bot", tmp / "mlsd_bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("knowledge", "prompts", ".venv", "bench"):
        (tmp / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def run_tests(work: Path, tests: list[str]) -> bool:
    """True when the tests pass. `python -m pytest` puts the cwd first on sys.path: the copy is imported."""
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=work, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def check_file(work: Path, rel: str, limit: int | None) -> list[tuple[Mutant, bool]]:
    path = work / rel
    original = path.read_text(encoding="utf-8")
    tree = ast.parse(original)
    tests = TARGETS[rel]
    if not run_tests(work, tests):
        sys.exit(f"the tests for {rel} fail without any mutation: fix them first")
    results = []
    try:
        for m in mutants(original)[:limit]:
            path.write_text(ast.unparse(_Apply(m.index).mutate(tree)), encoding="utf-8")
            t0 = time.perf_counter()
            caught = not run_tests(work, tests)
            results.append((m, caught))
            print(f"  {rel}:{m.line:<4} {m.what:<28} {'caught' if caught else 'SURVIVED'} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        path.write_text(original, encoding="utf-8")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--file", action="append", choices=sorted(TARGETS), help="default: every target")
    p.add_argument("--limit", type=int, help="at most this many mutants per file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlsd-mutation-") as tmp:
        work = _workspace(Path(tmp))
        results = {rel: check_file(work, rel, args.limit) for rel in args.file or sorted(TARGETS)}
    print()
    total = survived = 0
    for rel, rs in results.items():
        alive = [m for m, caught in rs if not caught]
        total, survived = total + len(rs), survived + len(alive)
        print(f"{rel}: {len(rs)} mutants, {len(rs) - len(alive)} caught, {len(alive)} survived "
              f"(tests: {', '.join(TARGETS[rel])})")
        for m in alive:
            print(f"  survived: line {m.line}: {m.what}")
    print(f"surviving mutants: {survived} of {total}")


if __name__ == "__main__":
    main()
