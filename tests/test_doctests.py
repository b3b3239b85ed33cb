"""The examples in the docstrings run: one test per module of the package.

Every module found by :func:`pkgutil.walk_packages` is imported and its doctests run with
``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``, in a temporary working directory and with torch's
default dtype as a user has it (float32). A module that fails to import fails its test.
Examples that need data or minutes are marked ``# doctest: +SKIP`` where they stand.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import ase_phisnet


def _module_names() -> list[str]:
    names = ["ase_phisnet"]
    broken = []
    for info in pkgutil.walk_packages(ase_phisnet.__path__, "ase_phisnet.", onerror=broken.append):
        names.append(info.name)
    # a subpackage that cannot be imported is reported by onerror and still gets its own test
    return sorted(set(names) | set(broken))


MODULES = _module_names()


def test_modules_found():
    assert {"ase_phisnet.basis", "ase_phisnet.data.location", "ase_phisnet.cli.main"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    module = importlib.import_module(name)  # an ImportError fails the test
    monkeypatch.chdir(tmp_path)
    torch.set_default_dtype(torch.float32)  # restored by the autouse float64 fixture
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in finder.find(module, name):  # objects defined in the module; globals: a copy of its namespace
        runner.run(test, out=report.append)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} doctest examples of {name} failed:\n" + "".join(report)

