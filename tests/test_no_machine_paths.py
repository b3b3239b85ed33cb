"""No tracked text file names a path of one machine (a user's home, a scratch or work folder).

Reference data is found through :func:`ase_phisnet.data.location.reference_data_dir`
(``$PHISNET_DATA``, else the relative ``../shared/data``), so no file needs an absolute path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import in_ci

REPO = Path(__file__).resolve().parents[1]

#: Suffixes of the text files scanned; files without a suffix under .ci/ are scanned too.
TEXT_SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".json", ".cfg", ".ini", ".txt", ".rst"}

#: Top folders of machine-specific absolute paths; ``shared`` catches an absolute form of the
#: documented relative default ``../shared/data``.
MACHINE_ROOTS = ("work", "home", "root", "tmp", "Users", "mnt", "scratch", "shared")

#: ``/ROOT/`` followed by a name, not preceded by a name character, a dot or ``~``: so
#: ``../shared/data``, ``runs/work/x`` and URLs (``host/home/...``) are not machine paths.
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:" + "|".join(MACHINE_ROOTS) + r")/[\w.$~-]")


def tracked_text_files() -> list[Path]:
    """The tracked text files of the checkout (``git ls-files``), pretrained weights excluded."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        message = f"{REPO} is not a git checkout (or git is missing): cannot list the tracked files"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    out = []
    for name in filter(None, names):
        path = Path(name)
        if path.suffix in TEXT_SUFFIXES or (path.parts[0] == ".ci" and not path.suffix) or name == ".gitignore":
            if (REPO / path).is_file():
                out.append(path)
    return out


def test_pattern():
    bad = ["/" + "work/shared/data/x.h5", '"/' + 'home/alice/x"', " /" + "root/.cache", "=/" + "tmp/run1", "(/" + "shared/data)"]
    good = ["../shared/data/x.h5", "runs/work/x", "https://example.org/home/x", "$HOME/x", "~/x", "./tmp/x", "a/tmp/b"]
    assert all(MACHINE_PATH.search(s) for s in bad), [s for s in bad if not MACHINE_PATH.search(s)]
    assert not any(MACHINE_PATH.search(s) for s in good), [s for s in good if MACHINE_PATH.search(s)]


def test_no_machine_paths_in_tracked_files():
    files = tracked_text_files()
    assert any(p.name == "pyproject.toml" for p in files)
    hits = []
    for path in files:
        try:
            text = (REPO / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{path}:{lineno}: {line.strip()[:160]}")
    assert not hits, (
        "absolute machine paths in tracked files (use a path relative to the checkout, or "
        "ase_phisnet.data.location.reference_data_dir() / $PHISNET_DATA for reference data):\n" + "\n".join(hits)
    )
