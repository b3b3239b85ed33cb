"""The documentation matches the code: model cards, commands, links and paths.

* ``docs/models/*.md`` equal what ``docs/make_model_cards.py`` writes from the shipped models'
  ``config.json`` (regenerate with ``python docs/make_model_cards.py``);
* every ``phisnet ...`` command quoted in README.md, CHANGELOG.md and docs/*.md names existing
  subcommands and options (checked against the argparse parser, no subprocess);
* every relative link points at a file, and every repository path quoted in the guides exists.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .conftest import load_card_generator

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Markdown files whose commands and links are checked.
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]
#: Pages about the present tree, whose quoted repository paths must exist (benchmarks.md and
#: CHANGELOG.md name files of earlier commits on purpose).
PRESENT_TENSE = [ROOT / "README.md", *(DOCS / n for n in ("index.md", "theory.md", "training.md", "cli.md"))]
TOP_DIRS = ("ase_phisnet/", "training/", "tests/", "benchmarks/", "md_runs/", "docs/", ".ci/")

pytestmark = pytest.mark.fast


def test_model_cards_are_generated_from_the_shipped_metadata():
    generator = load_card_generator()
    expected = generator.expected()
    stale = [str(p.relative_to(ROOT)) for p, text in expected.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"model cards differ from their metadata: {stale}; run python docs/make_model_cards.py"
    extra = sorted(str(p.relative_to(ROOT)) for p in (DOCS / "models").glob("*.md") if p not in expected)
    assert not extra, f"cards without a shipped model: {extra}"


def _code_texts(text: str) -> list[str]:
    """Inline code spans and the lines of fenced blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out.append(line)
        else:
            out += re.findall(r"`([^`]+)`", line)
    return out


def quoted_commands(text: str) -> list[str]:
    """Every ``phisnet ...`` command line in the code of a markdown page."""
    commands = []
    for code in _code_texts(text):
        code = code.split(" #")[0]
        for part in re.split(r"&&|\|\||;|\s\|\s", code):
            part = re.sub(r"^\s*(\w+=\S+\s+)*", "", part)  # environment assignments
            if part.startswith("phisnet ") or part == "phisnet":
                commands.append(part.strip())
    return commands


def _parser_actions(parser):
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return (subs[0].choices if subs else {}), {s for a in parser._actions for s in a.option_strings}


def check_command(command: str, root_parser) -> list[str]:
    """Problems of one quoted command: unknown subcommands or options."""
    try:
        tokens = shlex.split(command.replace("\\|", "|"))
    except ValueError:
        tokens = command.split()
    tokens = tokens[1:]
    parsers, problems = [root_parser], []
    while tokens:
        choices, _ = _parser_actions(parsers[0])
        head = tokens[0].strip("[]")
        if not choices or head.startswith("-"):
            break
        alternatives = head.split("|")
        if not all(a in choices for a in alternatives):
            if head.isupper() or not head.isidentifier():
                break  # a placeholder (GEOMETRY, FILE.h5): positional argument of this parser
            problems.append(f"{command!r}: no command {head!r} (known: {sorted(choices)})")
            return problems
        parsers = [choices[a] for a in alternatives]
        tokens = tokens[1:]
    for token in tokens:
        token = token.strip("[](),.")
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", token):
            option = token.split("=")[0]
            for parser in parsers:
                if option not in _parser_actions(parser)[1]:
                    problems.append(f"{command!r}: {parser.prog} has no option {option}")
    return problems


def test_quoted_commands_exist():
    from ase_phisnet.cli.main import build_parser

    parser = build_parser()
    problems, seen = [], 0
    for page in PAGES:
        if not page.exists():
            continue
        for command in quoted_commands(page.read_text()):
            seen += 1
            problems += [f"{page.relative_to(ROOT)}: {p}" for p in check_command(command, parser)]
    assert seen > 20
    assert not problems, "\n".join(problems)


def test_command_check_catches_misspellings():
    from ase_phisnet.cli.main import build_parser

    parser = build_parser()
    assert not check_command("phisnet data sample water -o w.xyz --n-frames 10", parser)
    assert check_command("phisnet data smaple water", parser)
    assert check_command("phisnet md -o out --nsteps 10", parser)
    assert not check_command("phisnet density train|evaluate|cube", parser)


def test_links_and_paths_exist():
    missing = []
    for page in PAGES:
        if not page.exists():
            continue
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)}: link {target}")
    for page in PRESENT_TENSE:
        if not page.exists():
            continue
        for code in _code_texts(page.read_text()):
            for path in re.findall(r"(?<![\w./-])((?:%s)[\w./+-]*)" % "|".join(re.escape(d) for d in TOP_DIRS), code):
                path = path.rstrip(".,:;)")
                if any(c in path for c in "*{<") or "NAME" in path:
                    continue
                if not (ROOT / path).exists():
                    missing.append(f"{page.relative_to(ROOT)}: path {path}")
    assert not missing, "\n".join(missing)


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


#: Internal history does not belong in the project text (the git log keeps it).
HISTORY = re.compile(r"\bsessions? \d+|\bstage \d+[a-z]?\b|\bprevious session|\bthis session", re.IGNORECASE)


def test_no_internal_history_in_the_prose():
    hits = []
    for page in PAGES:
        if page.exists():
            hits += [f"{page.relative_to(ROOT)}:{n}: {line.strip()}" for n, line in enumerate(page.read_text().splitlines(), 1) if HISTORY.search(line)]
    assert not hits, "\n".join(hits)


def test_yaml_examples_load(tmp_path, monkeypatch):
    """Recipes and training configs shown in the docs parse with the package's own loaders."""
    from ase_phisnet.recipes import load_recipe
    from ase_phisnet.training import TrainConfig

    monkeypatch.chdir(tmp_path)
    seen = 0
    for page in PAGES:
        if not page.exists():
            continue
        for n, block in enumerate(re.findall(r"^```yaml\n(.*?)^```", page.read_text(), re.S | re.M)):
            path = tmp_path / f"{page.stem}-{n}.yaml"
            path.write_text(block)
            load_recipe(path) if re.search(r"^stages:", block, re.M) else TrainConfig.from_yaml(path)
            seen += 1
    assert seen >= 1
