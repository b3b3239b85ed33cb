"""The README's examples, run as written.

Fenced blocks by tag:

* ``python``: run as written, each in its own ``python`` process;
* ``bash``: run with ``bash -euo pipefail`` after frame and step counts are lowered
  (:data:`LOWERED`: ``--n-frames``, ``--steps``, ``max_steps``, split sizes, ...); nothing else
  is changed;
* ``console``: setup and test-suite commands (``bash md_runs/quickstart.sh``, ``bash .ci/run``,
  ``python -m pytest``, ``ruff check``), which cannot run inside the suite: not run, and
  :func:`test_console_blocks_hold_only_setup_commands` checks they hold nothing else.

Any other tag fails :func:`test_every_block_has_a_known_tag`, so no example escapes unrun.

The blocks run in README order in one temporary working directory, whose ``../shared/data``
points at the reference data (``PHISNET_DATA`` too). The first block that labels or trains, and
every block after it (they read its outputs), is marked ``slow``; running one of those alone runs
the blocks of that chain before it first. About 2 minutes on one core.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: Tags whose blocks run, and tags that are documented as not run.
RUN_TAGS = ("python", "bash")
NOT_RUN_TAGS = ("console",)

#: (pattern, replacement) applied to bash blocks: frame and step counts only.
LOWERED = [
    (r"--n-frames\s+\d+", "--n-frames 8"),
    (r"--max-frames\s+\d+", "--max-frames 4"),
    (r"--frames\s+\d+", "--frames 2"),
    (r"--steps\s+\d+", "--steps 4"),
    (r"--max-steps\s+\d+", "--max-steps 4"),
    (r"--n-train\s+\d+", "--n-train 4"),
    (r"--n-val\s+\d+", "--n-val 2"),
    (r"\bmax_steps:\s*\d+", "max_steps: 4"),
    (r"\bval_every:\s*\d+", "val_every: 2"),
    (r"\benergy_forces_from:\s*\d+", "energy_forces_from: 2"),
    (r"\bn_train:\s*\d+", "n_train: 4"),
    (r"\bn_val:\s*\d+", "n_val: 2"),
]

#: A console line must start with one of these (comments and blank lines aside).
CONSOLE_COMMANDS = ("bash md_runs/quickstart.sh", "bash .ci/run", "python -m pytest", "ruff check")

#: What makes a block heavy: it and every block after it form the slow chain.
HEAVY = re.compile(r"phisnet (train|data label)\b")

TIMEOUT_S = 900


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(tag, body, first line number)`` of every fenced block, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if m:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((m.group(1), "\n".join(body) + "\n", start + 1))
        i += 1
    return blocks


def lowered(script: str) -> str:
    for pattern, replacement in LOWERED:
        script = re.sub(pattern, replacement, script)
    return script


BLOCKS = fenced_blocks(README.read_text())
RUNNABLE = [(n, tag, body, line) for n, (tag, body, line) in enumerate(BLOCKS) if tag in RUN_TAGS]
_first_heavy = next((k for k, (_, tag, body, _) in enumerate(RUNNABLE) if tag == "bash" and HEAVY.search(body)), len(RUNNABLE))
CHAIN = {k for k in range(len(RUNNABLE)) if k >= _first_heavy}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, reference_data):
    """A fresh working directory with ``../shared/data`` -> the reference data."""
    root = tmp_path_factory.mktemp("readme")
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(reference_data.resolve(), target_is_directory=True)
    work = root / "work"
    work.mkdir()
    return work, {"done": set()}


def environment(reference_data: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", PHISNET_DATA=str(reference_data.resolve()))
    return env


def run_block(k: int, cwd: Path, env: dict) -> None:
    _, tag, body, line = RUNNABLE[k]
    if tag == "python":
        cmd = [sys.executable, "-c", body]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", lowered(body)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, (
        f"README.md block at line {line} ({tag}) exited {proc.returncode}\n"
        f"--- stdout (tail)\n{proc.stdout[-4000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}"
    )


def _params():
    for k, (_, tag, _, line) in enumerate(RUNNABLE):
        marks = [pytest.mark.slow] if k in CHAIN else []
        yield pytest.param(k, id=f"line{line}-{tag}", marks=marks)


@pytest.mark.parametrize("k", list(_params()))
def test_readme_block(k, workdir, reference_data):
    cwd, state = workdir
    env = environment(reference_data)
    for before in sorted(CHAIN):  # a chain block needs the chain's earlier blocks' outputs
        if before < k and before not in state["done"] and k in CHAIN:
            run_block(before, cwd, env)
            state["done"].add(before)
    run_block(k, cwd, env)
    state["done"].add(k)


def test_every_block_has_a_known_tag():
    unknown = [(line, tag) for tag, _, line in BLOCKS if tag not in RUN_TAGS + NOT_RUN_TAGS]
    assert not unknown, f"README.md blocks with tags neither run {RUN_TAGS} nor documented as not run {NOT_RUN_TAGS}: {unknown}"
    assert any(tag == "bash" for tag, _, _ in BLOCKS) and any(tag == "python" for tag, _, _ in BLOCKS)


def test_console_blocks_hold_only_setup_commands():
    for tag, body, line in BLOCKS:
        if tag not in NOT_RUN_TAGS:
            continue
        for text in body.splitlines():
            command = text.split("#")[0].strip()
            assert not command or command.startswith(CONSOLE_COMMANDS), (
                f"README.md line {line}: {command!r} sits in a {tag} block, which tests/test_readme.py does not run; "
                f"only {CONSOLE_COMMANDS} belong there, examples go in bash or python blocks"
            )


def test_lowering_touches_only_counts():
    script = "phisnet data sample water -o w.xyz --n-frames 1000 --seed 1\nmax_steps: 40000\nphisnet md -o out --steps 2000\n"
    assert lowered(script) == "phisnet data sample water -o w.xyz --n-frames 8 --seed 1\nmax_steps: 4\nphisnet md -o out --steps 4\n"
