"""Shipping a trained model: its test-split figures, its provenance, its model folder.

The last step of a recipe (:mod:`ase_phisnet.recipes`), usable on its own:

* :func:`ship_hamiltonian_model` optionally fits per-element atomic energies (Hartree) to the
  training split's mean energy residual (forces do not change), evaluates the model on its
  test split (H / eps / psi, and energy / force MAE with an H~core head), records the figures
  under ``metadata["test_metrics"]`` and writes ``model.safetensors``, ``splits.json`` and
  ``config.json``;
* :func:`ship_density_model` computes eps_rho of both density routes, the fitting floor and the
  one-step energies on the test split (``metadata["test_report"]``, with the per-frame values of
  the first frames so that a test can recompute them) and writes the density model's folder.

``provenance`` adds ``base_model`` (the model these weights were built on: name and SHA-256 of
its weights) and the record of the training stages to the metadata.
:func:`package_folder` is where a model must go to be found by name
(``ase_phisnet.load_model(NAME)``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError, ModelFileError


def package_folder(name: str) -> Path:
    """``ase_phisnet/pretrained/NAME``: a model there loads by its name."""
    from .model.io import SHIPPED

    return SHIPPED / name


def ship_hamiltonian_model(model_dir, to, dataset, *, fit_atomic_energies: bool = False, provenance: dict | None = None, attach: dict | None = None, progress: bool = True) -> tuple[Path, dict]:
    """Evaluate a Hamiltonian model on its test split and write it, with the figures, to ``to``.

    Parameters
    ----------
    model_dir : path-like
        The trained model folder (e.g. a stage's ``best/``).
    to : path-like
        The folder to write (created; files replaced atomically).
    dataset : path-like
        The dataset the model was trained on (its splits are frame indices of it).
    fit_atomic_energies : bool
        First fit per-element energies (Hartree) to the training split's mean energy residual.
    provenance : dict, optional
        ``{"base_model": {...}, "training": {"recipe": ..., "stages": [...]}}``, merged into the
        metadata (``training`` key by key).
    attach : dict, optional
        Metadata key -> JSON file; each file's content is stored under its (new) key.

    Returns
    -------
    (Path, dict)
        The written folder and the test-split metrics (µEh, %, meV, meV/Å).
    """
    from .data.splits import select_split
    from .evaluation import model_metrics
    from .model.io import load_model, save_model
    from .training.data import load_frames, molecule_counts, pair_distance_range
    from .training.energy_forces import fit_atomic_energies as fit

    model = load_model(model_dir)
    frames, _ = load_frames(dataset)
    if fit_atomic_energies:
        fit(model, select_split(model, frames, "train"))
    test = select_split(model, frames, "test")
    result = model_metrics(model, test, progress=progress)
    metadata = _with_provenance(dict(model.metadata), provenance)
    metadata["test_metrics"] = dict(result)
    metadata["test_metrics"]["dataset"] = " + ".join(Path(d).name for d in dataset) if isinstance(dataset, (list, tuple)) else Path(dataset).name
    for key, path in (attach or {}).items():
        if key in metadata:
            raise ConfigError(f"attach: metadata key {key!r} exists already; choose a new key")
        metadata[key] = json.loads(Path(path).read_text())
    if "training_range" not in metadata or "molecules" not in metadata["training_range"]:  # models exported before the records existed
        train = select_split(model, frames, "train")
        metadata["training_range"] = {
            "pair_distance_A": pair_distance_range([f["numbers"] for f in train], [f["positions"] for f in train]),
            "molecules": molecule_counts([f["numbers"] for f in train]),
        }
    return save_model(model, to, metadata=metadata, state_dict=as_trained(model)), result


def as_trained(model) -> dict:
    """The weights in the dtype they were trained in, where that loses nothing.

    A model is evaluated in float64 whatever it was trained in; weights trained in float32 are
    stored as float32 again (half the file, the same numbers), and any other model as it is.
    """
    import torch

    weights = model.state_dict()
    if model.metadata.get("training", {}).get("dtype") != "float32":
        return weights
    narrow = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in weights.items()}
    if all(torch.equal(narrow[k].to(v.dtype), v) for k, v in weights.items()):
        return narrow
    return weights


def ship_density_model(model_dir, to, dataset, *, frames: int | None = None, keep_frames: int = 5, one_step: bool = True, provenance: dict | None = None, progress: bool = True) -> tuple[Path, dict]:
    """Evaluate a density model on its test split and write it, with the report, to ``to``.

    Parameters
    ----------
    model_dir : path-like
        The trained density model folder (a density stage's ``best/``).
    to : path-like
        The folder to write.
    dataset : path-like
        The reference dataset of the backbone's splits.
    frames : int, optional
        Evaluate only the first frames of the test split (default all; 1500 water frames take
        about 25 minutes on one core).
    keep_frames : int
        Per-frame values kept in the report for the tests.
    one_step : bool
        Also the one-step Harris-Foulkes and Kohn-Sham energies (meV/atom).
    provenance : dict, optional
        As for :func:`ship_hamiltonian_model`; its ``base_model`` must be the backbone stored
        in the density model (checked here, and again by every load).

    Returns
    -------
    (Path, dict)
        The written folder and the report (eps_rho in %, energies in meV/atom).

    Raises
    ------
    ModelFileError
        The stored backbone is not byte for byte the recorded base model's weights.
    """
    from .data.splits import select_split
    from .density.evaluation import density_errors
    from .density.model import FORMAT, backbone_sha256, load_density_model, save_density_model
    from .model.io import read_config, read_weights
    from .training.data import load_frames

    model = load_density_model(model_dir)
    base = (provenance or {}).get("base_model")
    if base is not None:
        stored = backbone_sha256(read_weights(model_dir, read_config(model_dir, fmt=FORMAT, required=("backbone", "auxbasis"), what="a density model config")))
        if stored != base["weights_sha256"]:
            raise ModelFileError(
                f"{model_dir}: the backbone stored in the density model (SHA-256 {stored[:12]}...) does not reproduce the weights of "
                f"{base['name']} ({base['weights_sha256'][:12]}...): that model is stored in another dtype or tensor layout. "
                "Save it again with this version (load_model, then save_model) and train the density stage on that folder"
            )
    all_frames, meta = load_frames(dataset)
    test = select_split(model, all_frames, "test")[:frames]
    report = density_errors(model.backbone, test, model, one_step=one_step, xc=meta.get("xc") or "pbe", progress=progress)
    report.update(split="test", model="the density model's backbone", density_model=Path(str(to)).name)
    report["per_frame"] = {k: v[:keep_frames] for k, v in report.get("per_frame", {}).items()}
    metadata = _with_provenance(dict(model.metadata), provenance)
    metadata["test_report"] = report
    return save_density_model(model, to, metadata), report


def _with_provenance(metadata: dict, provenance: dict | None) -> dict:
    provenance = provenance or {}
    if provenance.get("base_model") is not None:
        metadata["base_model"] = provenance["base_model"]
    if provenance.get("training"):
        metadata["training"] = {**metadata.get("training", {}), **provenance["training"]}
    return metadata
