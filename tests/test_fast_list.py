"""The ``fast`` list of tests/conftest.py names tests that exist (a renamed test would drop out)."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import FAST_TESTS, _fast_entry_matches

TESTS = Path(__file__).resolve().parent


def _test_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith(("test", "Test"))}


def test_every_fast_entry_names_a_test():
    missing = []
    for entry in FAST_TESTS:
        module, _, rest = entry.partition("::")
        path = TESTS / module
        if not path.is_file():
            missing.append(f"{entry}: no module {path.relative_to(TESTS.parent)}")
            continue
        name = rest.split("::")[0].split("[")[0]
        if name and name not in _test_names(path):
            missing.append(f"{entry}: {module} has no test {name}")
    assert not missing, "stale entries in FAST_TESTS (tests/conftest.py):\n" + "\n".join(missing)
    assert len(set(FAST_TESTS)) == len(FAST_TESTS), "duplicate entries in FAST_TESTS"


def test_entry_matching():
    assert _fast_entry_matches("data/test_store.py", "data/test_store.py::test_bulk_write")
    assert _fast_entry_matches("test_basis.py::test_x", "test_basis.py::test_x[water]")
    assert _fast_entry_matches("test_basis.py::test_x[water]", "test_basis.py::test_x[water]")
    assert not _fast_entry_matches("test_basis.py::test_x", "test_basis.py::test_x_slow")
    assert not _fast_entry_matches("test_basis.py::test_x[water]", "test_basis.py::test_x[ethanol]")
    assert not _fast_entry_matches("data/test_store.py", "data/test_store_more.py::test_a")
