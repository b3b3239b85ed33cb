"""The package's layers: every module belongs to one, and no module imports a layer above its own.

    core (units, errors, files, basis, molecule) -> data -> equivariant -> model -> electronic
    -> calculator | training | reference -> applications -> cli

Imports are read from the source (``ast``), module level and inside functions alike, so a lazy
import cannot hide a cycle. The three packages of one layer (calculator, training, reference)
do not import each other.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

PACKAGE = Path(__file__).resolve().parents[1] / "ase_phisnet"

#: Layers from the bottom up; each entry names top-level modules or subpackages of ase_phisnet.
LAYERS = [
    {"__init__", "units", "errors", "atomic_files", "basis", "molecule"},
    {"data"},
    {"equivariant"},
    {"model"},
    {"native"},
    {"electronic"},
    {"calculator", "training", "reference"},
    {"md", "optimize", "vibrations", "plots", "density", "transfer", "evaluation", "shipping", "recipes", "model_card"},
    {"cli"},
]
#: Layers whose members must not import each other.
INDEPENDENT = {6}


def unit_of(module: str) -> str:
    """``ase_phisnet.model.io`` -> ``model``; ``ase_phisnet`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise KeyError(unit)


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_modules(module: str, path: Path) -> set[str]:
    """The ase_phisnet modules ``module`` imports (absolute or relative, at any depth)."""
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ase_phisnet"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "ase_phisnet":
                found.add(target)
    return found


def test_every_module_belongs_to_a_layer():
    unassigned = sorted(m for m in package_modules() if not any(unit_of(m) in layer for layer in LAYERS))
    assert not unassigned, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {unassigned}"


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for module, path in package_modules().items():
        unit = unit_of(module)
        for target in imported_modules(module, path):
            other = unit_of(target)
            if other == unit:
                continue
            if layer_of(other) > layer_of(unit) or (layer_of(other) == layer_of(unit) and layer_of(unit) in INDEPENDENT):
                upward.append(f"{module} imports {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    source = tmp_path / "evaluation.py"
    source.write_text("def f():\n    from .cli.main import main\n    from .model import io\n")
    assert imported_modules("ase_phisnet.evaluation", source) == {"ase_phisnet.cli.main", "ase_phisnet.model"}
    nested = tmp_path / "trainer.py"
    nested.write_text("from ..evaluation import evaluate\n")
    assert imported_modules("ase_phisnet.training.trainer", nested) == {"ase_phisnet.evaluation"}
