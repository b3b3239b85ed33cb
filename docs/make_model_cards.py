"""Write one model card per shipped model, from the model's own ``config.json``.

    python docs/make_model_cards.py            # (re)write docs/models/*.md
    python docs/make_model_cards.py --check    # exit 1 if a committed card differs

Everything on a card comes from the model folder (``ase_phisnet/pretrained/NAME/``):
``config.json`` (architecture, units, ``metadata``: reference method, data set, splits,
training record, validation and test metrics) and, where present, ``splits.json`` beside the
weights. Nothing is typed by hand, so a card cannot drift from the file it describes:
``tests/test_docs.py`` regenerates the cards and compares them with the committed ones.
Keys the generator does not know are listed under "Other metadata", never dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "ase_phisnet" / "pretrained"
CARDS = ROOT / "docs" / "models"

#: Unit suffixes of metric keys and how a card writes them.
UNITS = [
    ("_meV_per_atom", "meV/atom"),
    ("_meV_per_A", "meV/Å"),
    ("_uEh", "µEh"),
    ("_meV", "meV"),
    ("_percent", "%"),
    ("_s", "s"),
    ("_D", "D"),
]

#: Metadata keys a card renders in its own sections.
KNOWN_METADATA = {"reference", "dataset", "base_model", "splits", "training", "validation", "test_metrics", "training_range", "transfer_report", "test_report"}


def number(value) -> str:
    """A metric value: 4 significant figures for small or large numbers, else 2 decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and (abs(value) < 0.01 or abs(value) >= 1e5):
        return f"{value:.4g}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:,.2f}"


def metric_label(key: str) -> tuple[str, str]:
    """(name, unit) of a metric key such as ``h_mae_uEh`` or ``val_forces_mae_meV_per_A``."""
    for suffix, unit in UNITS:
        if key.endswith(suffix):
            return key[: -len(suffix)], unit
    return key, ""


def metrics_table(metrics: dict) -> list[str]:
    """A two-column table of the scalar entries of ``metrics``; lists and dicts are skipped."""
    rows = ["| metric | value | unit |", "|---|---|---|"]
    for key, value in metrics.items():
        if isinstance(value, (dict, list)):
            continue
        name, unit = metric_label(key)
        shown = f"{value:.3f}" if unit == "%" and isinstance(value, float) else number(value)
        rows.append(f"| `{name}` | {shown} | {unit} |")
    return rows


def read_splits(folder: Path, metadata: dict) -> tuple[dict, str]:
    """The model's splits and where they are recorded (``splits.json`` first, else config.json)."""
    path = folder / "splits.json"
    if path.exists():
        return json.loads(path.read_text()), f"`{path.relative_to(ROOT).as_posix()}`"
    if "splits" in metadata:
        return metadata["splits"], f"`metadata.splits` of `{(folder / 'config.json').relative_to(ROOT).as_posix()}`"
    return {}, ""


def reference_lines(reference: dict) -> list[str]:
    method = str(reference.get("method", "?")).upper()
    if reference.get("xc"):
        method += f" ({reference['xc'].upper()})"
    parts = [f"{method}/{reference.get('basis', '?')}"]
    if reference.get("grids_level") is not None:
        parts.append(f"grid level {reference['grids_level']}")
    if reference.get("pyscf_version"):
        parts.append(f"PySCF {reference['pyscf_version']}")
    charge = reference.get("charge")
    parts.append(f"charge {charge if charge is not None else 0}, closed shell")
    lines = [f"- Reference method: {', '.join(parts)}"]
    if reference.get("source"):
        lines.append(f"- Labels from: `{reference['source']}`")
    return lines


def architecture_lines(config: dict) -> list[str]:
    if "model" in config:
        m = config["model"]
        core = ", H~core on top of the exact T + V_nuc" if m.get("core_baseline") else ""
        lines = [
            f"- Architecture: PhiSNet, preset `{m.get('preset')}`, {m.get('features')} features, "
            f"{m.get('num_interactions')} interaction modules, {m.get('num_radial')} radial functions, "
            f"cutoff {m.get('cutoff')} Bohr, lmax {m.get('lmax') if m.get('lmax') is not None else '2 x the basis l (4)'}",
            f"- Heads: {', '.join(m.get('heads', []))}{core}"
            + ("; a learned energy correction read from the invariant atom features (the Hamiltonian-only energy reported beside it)" if m.get("energy_correction") else ""),
            f"- Elements: {', '.join(str(z) for z in m.get('elements', []))}; basis {m.get('basis')}",
        ]
        if m.get("atomic_energies"):
            e0 = ", ".join(f"Z={z}: {number(v)} Eh" for z, v in m["atomic_energies"].items())
            lines.append(f"- Atomic energies (fitted after training): {e0}")
        return lines
    lines = []
    if "auxbasis" in config:
        lines.append(f"- Atom-centred density model (SALTED), auxiliary basis `{config['auxbasis']}`")
    if "backbone" in config:
        b = config["backbone"]
        lines.append(f"- Backbone (frozen, stored in the file): PhiSNet preset `{b.get('preset')}`, {b.get('features')} features, "
                     f"{b.get('num_interactions')} interaction modules, elements {', '.join(str(z) for z in b.get('elements', []))}")
    return lines


def training_lines(training: dict) -> list[str]:
    """The training record: known settings as bullets, then any other key generically."""
    lines = []
    rest = dict(training)
    rest.pop("stages", None)
    recipe = rest.pop("recipe", None)
    if recipe:
        lines += [f"- Recipe: `{recipe}`; every stage in order, then the ship step: `phisnet train {recipe}`"]
    for key in ("preset", "dtype", "batch_size", "hardware", "torch", "package_version", "backbone", "auxbasis", "solver", "ridge", "ridge_chosen", "dataset"):
        if key in rest:
            value = rest.pop(key)
            lines.append(f"- {key.replace('_', ' ')}: `{value}`" if isinstance(value, str) else f"- {key.replace('_', ' ')}: {_inline(value)}")
    if "steps" in rest and "wall_time_s" in rest:
        lines.append(f"- Last stage: {number(rest.pop('steps'))} steps, {number(rest.pop('wall_time_s'))} s")
    elif "wall_s" in rest:
        lines.append(f"- Wall time: {number(rest.pop('wall_s'))} s")
    if isinstance(rest.get("loss"), dict):
        lines.append("- Loss weights of the last stage: " + ", ".join(f"{k} {v:g}" for k, v in rest.pop("loss").items()))
    return lines + generic(rest)


def base_model_lines(base: dict | None) -> list[str]:
    """"Starts from" for the model's base and, while the base is a model folder committed to the
    repository (``training/checkpoints/NAME``), for the model that one started from: each with
    what its own ``config.json`` records (note, recipe, stages or last run)."""
    lines, seen = [], set()
    while base and base.get("name") not in seen:
        name = str(base.get("name"))
        seen.add(name)
        lines.append(f"- Starts from: `{name}` (weights SHA-256 `{str(base.get('weights_sha256', ''))[:16]}...`)" + (f"; {base['note']}" if base.get("note") else ""))
        config = ROOT / name / "config.json"
        if not config.is_file():
            break
        theirs = json.loads(config.read_text()).get("metadata", {})
        training = theirs.get("training", {})
        if theirs.get("note"):
            lines.append(f"  - What it is: {theirs['note']}")
        if training.get("recipe"):
            lines.append(f"  - Made by `phisnet train {training['recipe']} --no-ship`")
        stages = training.get("stages")
        if isinstance(stages, list) and stages:
            for s in stages:
                lines.append(f"  - Stage `{s.get('stage')}`: {number(s.get('steps', ''))} steps, {number(s.get('wall_time_s', ''))} s ({s.get('hardware', '')})")
        elif "steps" in training and "wall_time_s" in training:
            lines.append(f"  - Its last run: {number(training['steps'])} steps, {number(training['wall_time_s'])} s ({training.get('hardware', '')})")
        base = theirs.get("base_model")
    return lines


def stages_table(stages: list) -> list[str]:
    rows = ["| # | stage | what | steps | wall time (s) | hardware |", "|---|---|---|---|---|---|"]
    for i, s in enumerate(stages, 1):
        label = s.get("stage") or s.get("config") or (f"model {s['model']}" if s.get("model") else "")
        hardware = s.get("hardware") or (f"threads: {s['threads']}" if s.get("threads") else "")
        rows.append(f"| {i} | `{label}` | {s.get('what', '')} | {number(s.get('steps', ''))} | "
                    f"{number(s.get('wall_time_s', ''))} | {hardware} |")
    total_steps = sum(s.get("steps", 0) for s in stages if isinstance(s.get("steps"), int))
    total_wall = sum(s.get("wall_time_s", 0) for s in stages if isinstance(s.get("wall_time_s"), (int, float)))
    rows.append(f"| | total | | {number(total_steps)} | {number(total_wall)} | |")
    return rows


def generic(value, indent: int = 0) -> list[str]:
    """Nested metadata as a bullet list (lists of more than 8 numbers shown by their length)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and not _short_list(v):
                lines.append(f"{pad}- `{k}`:")
                lines += generic(v, indent + 1)
            else:
                lines.append(f"{pad}- `{k}`: {_inline(v)}")
    elif isinstance(value, list):
        if value and all(isinstance(v, (int, float)) for v in value):
            lines.append(f"{pad}- {len(value)} values")
        else:
            for v in value:
                lines += generic(v, indent) if isinstance(v, (dict, list)) else [f"{pad}- {_inline(v)}"]
    return lines


def _short_list(v) -> bool:
    return isinstance(v, list) and len(v) <= 8 and all(not isinstance(x, (dict, list)) for x in v)


def _inline(v) -> str:
    if isinstance(v, list):
        return ", ".join(number(x) for x in v)
    return number(v) if isinstance(v, (int, float)) else f"`{v}`"


def card(folder: Path) -> str:
    """The markdown card of one model folder."""
    name = folder.name
    config = json.loads((folder / "config.json").read_text())
    meta = config.get("metadata", {})
    density = config.get("format", "").startswith("ase_phisnet.density") or "auxbasis" in config
    out = [
        f"# Model card: `{name}`",
        "",
        "<!-- Generated by docs/make_model_cards.py from ase_phisnet/pretrained/"
        f"{name}/config.json; do not edit by hand. -->",
        "",
        f"File format `{config.get('format')}`, written by ase_phisnet {config.get('package_version')}; "
        f"weights SHA-256 `{str(config.get('weights_sha256', ''))[:16]}...`.",
        "",
        "## What it is",
        "",
    ]
    out += architecture_lines(config)
    if meta.get("reference"):
        out += reference_lines(meta["reference"])
    dataset = meta.get("dataset") or meta.get("training", {}).get("dataset")
    if dataset:
        out.append(f"- Data set: `{dataset}`")
    if config.get("units"):
        out.append(f"- Units: {config['units']}")
    out += ["", "Load it:", "", "```python"]
    if density:
        out += ["from ase_phisnet.density.model import load_density_model", f'model = load_density_model("{name}")']
    else:
        out += ["from ase_phisnet import PhiSNetCalculator", f'calc = PhiSNetCalculator(model="{name}")']
    out += ["```", ""]

    splits, where = read_splits(folder, meta)
    if splits:
        sizes = ", ".join(f"{k} {len(splits[k]):,}" for k in ("train", "val", "test") if isinstance(splits.get(k), list))
        seed = f", seed {splits['seed']}" if "seed" in splits else ""
        out += ["## Splits", "", f"Frames: {sizes}{seed}. The frame indices are in {where}.", ""]

    training = meta.get("training", {})
    if training:
        out += ["## Training", ""]
        out += base_model_lines(meta.get("base_model"))
        out += training_lines(training)
        stages = training.get("stages")
        if isinstance(stages, list) and stages:
            out += ["", "Stages, in order (`metadata.training.stages`):", ""] + stages_table(stages)
        out.append("")

    if meta.get("test_metrics"):
        tm = dict(meta["test_metrics"])
        tm.pop("molecules", None)
        each = tm.pop("by_molecule", None)
        head = f"## Test metrics ({tm.pop('n_frames', '?')} frames" + (f" of `{tm.pop('dataset')}`" if "dataset" in tm else "") + ")"
        out += [head, ""]
        if each:  # a model of several molecules: one table each
            for name, values in each.items():
                values = {k: v for k, v in values.items() if k != "molecules"}
                out += [f"### {name} ({values.pop('n_frames', '?')} frames)", ""] + metrics_table(values) + [""]
        else:
            out += metrics_table(tm) + [""]
    if meta.get("transfer_report"):
        tr = meta["transfer_report"]
        out += [f"## Against CCSD(T) on {tr.get('n_frames', '?')} held-out {tr.get('split', '')} frames (relative energies)", "",
                "| model or method | relative-energy MAE (meV) | force MAE (meV/Å) |", "|---|---|---|"]
        for row, values in tr.get("rows", {}).items():
            out.append(f"| {row} | {number(values.get('relative_energy_mae_meV'))} | {number(values.get('forces_mae_meV_per_A'))} |")
        extra = {k: v for k, v in tr.items() if k not in ("rows", "frame_indices", "n_frames", "split", "basis")}
        out += [""] + generic(extra) + [""]
    if meta.get("test_report"):
        tr = dict(meta["test_report"])
        tr.pop("per_frame", None)
        head = f"## Test report ({tr.pop('n_frames', '?')} frames, split `{tr.pop('split', '?')}`)"
        out += [head, ""] + metrics_table(tr) + [""]
    if meta.get("validation"):
        out += ["## Validation metrics (best weights)", ""] + metrics_table(meta["validation"]) + [""]
    if meta.get("training_range"):
        molecules = meta["training_range"].get("molecules", {})
        if molecules:
            out += ["## Molecules trained on", "", "Frames per molecule of the training split (`metadata.training_range.molecules`).",
                    "", "| molecule | training frames |", "|---|---|"]
            out += [f"| {name} | {count} |" for name, count in molecules.items()] + [""]
        pairs = meta["training_range"].get("pair_distance_A", {})
        if pairs:
            out += ["## Training range", "", "Shortest and longest distance per element pair in the training data (Å); "
                    "the calculator warns below the shortest.", "", "| pair (Z-Z) | min (Å) | max (Å) |", "|---|---|---|"]
            out += [f"| {p} | {v[0]:.3f} | {v[1]:.3f} |" for p, v in pairs.items()] + [""]
    other = {k: v for k, v in meta.items() if k not in KNOWN_METADATA}
    if other:
        out += ["## Other metadata", ""] + generic(other) + [""]
    return "\n".join(out).rstrip() + "\n"


def index(names: list[str]) -> str:
    lines = ["# Shipped models", "", "<!-- Generated by docs/make_model_cards.py; do not edit by hand. -->", "",
             "One card per folder of `ase_phisnet/pretrained/`, written from its `config.json`:", ""]
    lines += [f"- [{n}]({n}.md)" for n in names]
    return "\n".join(lines) + "\n"


def expected() -> dict[Path, str]:
    """Every card file and its content, as the generator writes it."""
    folders = sorted(p for p in PRETRAINED.iterdir() if (p / "config.json").exists())
    files = {CARDS / f"{f.name}.md": card(f) for f in folders}
    files[CARDS / "README.md"] = index([f.name for f in folders])
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = p.parse_args(argv)
    stale = []
    for path, text in expected().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print("stale model cards (run python docs/make_model_cards.py): " + ", ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
