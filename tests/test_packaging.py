"""The wheel: built from the sources, it holds the shipped models and works outside the checkout.

The wheel is built from a copy of the checkout's files (so no stale ``build/`` folder of the
checkout leaks into it), unpacked into a temporary folder and imported from there by a
subprocess whose working directory is outside the checkout. The development venv's editable
install would otherwise shadow the wheel; the unpacked folder comes first on ``PYTHONPATH`` and
the subprocess checks that every ``ase_phisnet`` module it loaded lives in that folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "ase_phisnet" / "pretrained"

pytestmark = pytest.mark.slow


def _source_files() -> list[Path]:
    """The files a build should see: tracked and not-ignored untracked files (or all, without git)."""
    if shutil.which("git") is not None and (REPO / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
        ).stdout.decode()
        return [Path(n) for n in out.split("\0") if n and (REPO / n).is_file()]
    skip = {".venv", ".git", "build", "runs", "outputs", "__pycache__"}
    return [p.relative_to(REPO) for p in REPO.rglob("*") if p.is_file() and not skip & set(p.relative_to(REPO).parts) and ".egg-info" not in str(p)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (``pip wheel --no-build-isolation``, offline)."""
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.fail(f"setuptools {setuptools.__version__} cannot build this project (needs >= 77, see pyproject.toml's build-system); pip install -e '.[test]' installs it")
    src = tmp_path_factory.mktemp("src")
    for rel in _source_files():
        if rel.parts[0] in ("tests", "training", "benchmarks", "md_runs"):
            continue
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}\n{build.stderr}"
    wheels = list(out.glob("ase_phisnet-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    import ase_phisnet

    names = set(zipfile.ZipFile(wheel).namelist())
    models = sorted(p.parent.name for p in PRETRAINED.glob("*/model.safetensors"))
    assert models, f"no shipped models under {PRETRAINED}"
    for name in models:
        for path in sorted((PRETRAINED / name).iterdir()):
            if path.suffix in (".json", ".safetensors"):
                member = f"ase_phisnet/pretrained/{name}/{path.name}"
                assert member in names, f"{member} is not in the wheel"
                assert zipfile.ZipFile(wheel).getinfo(member).file_size == path.stat().st_size, member
    assert not [n for n in names if n.startswith(("tests/", "training/", "benchmarks/"))]
    assert wheel.name.startswith(f"ase_phisnet-{ase_phisnet.__version__}-")
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert f"Version: {ase_phisnet.__version__}\n" in text
    assert "License-Expression: MIT\n" in text
    entry = zipfile.ZipFile(wheel).read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "phisnet = ase_phisnet.cli.main:main" in entry


CHILD = textwrap.dedent(
    """
    import importlib.metadata, json, sys
    from pathlib import Path

    site = Path(sys.argv[1]).resolve()
    import ase_phisnet
    from ase_phisnet.data.location import checkout_root

    model = ase_phisnet.load_model("water-pbe-def2svp")
    out = model.predict([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    fock = out["fock"]
    foreign = sorted(
        name for name, mod in sys.modules.items()
        if name.split(".")[0] == "ase_phisnet" and getattr(mod, "__file__", None) and site not in Path(mod.__file__).resolve().parents
    )
    print(json.dumps({
        "file": str(Path(ase_phisnet.__file__).resolve()),
        "version": ase_phisnet.__version__,
        "dist_version": importlib.metadata.version("ase_phisnet"),
        "shipped": ase_phisnet.shipped_models(),
        "shape": list(fock.shape),
        "trace": float(fock.trace()),
        "symmetric": float(abs(fock - fock.T).max()),
        "foreign": foreign,
        "checkout_root": str(checkout_root()),
    }))
    """
)


def test_installed_wheel_predicts(wheel, tmp_path):
    import os

    import ase_phisnet

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    run = subprocess.run([sys.executable, "-c", CHILD, str(site)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).is_relative_to(site.resolve()), f"imported {got['file']}, not the unpacked wheel in {site}"
    assert not got["foreign"], f"modules loaded from outside the wheel: {got['foreign']}"
    assert got["checkout_root"] == "None"  # an installed package does not look beside a checkout
    assert got["version"] == got["dist_version"] == ase_phisnet.__version__
    assert "water-pbe-def2svp" in got["shipped"]
    assert got["shape"] == [24, 24] and got["symmetric"] < 1e-8
    assert -200 < got["trace"] < 0  # Hartree: a physical Fock matrix of water (core levels dominate)
