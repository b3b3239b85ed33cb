"""Transfer learning from Hartree–Fock to CCSD(T): how methods and models compare with CCSD(T).

PhiSNet trains a Hamiltonian model on Hartree–Fock matrices, then fine-tunes it on CCSD(T)
energies (and forces) through its energy expression, the HF matrices kept as a regulariser
(the stages of ``training/recipes/water-ccsdt-def2svp.yaml``). The correlation
energy is a near-constant offset (about -0.2 Hartree, ~6 eV, for water), so energies are
compared as *relative* energies: each set of energies is shifted by its own mean over the
frames compared, and the mean absolute difference of what is left is reported.

Examples
--------
>>> import numpy as np
>>> E_ref = np.array([-76.30, -76.29, -76.28])
>>> round(relative_energy_mae(E_ref + 0.2, E_ref), 12)   # a constant offset costs nothing
0.0
>>> round(relative_energy_mae(np.array([0.0, 0.0, 0.003]), np.zeros(3)) * 1e3, 3)   # mHartree
1.333
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .units import HARTREE, HARTREE_PER_BOHR


def relative_energy_mae(energies, ref_energies) -> float:
    """MAE (Hartree) of ``(E - mean E) - (E_ref - mean E_ref)`` over the frames."""
    E = np.asarray(energies, dtype=np.float64)
    R = np.asarray(ref_energies, dtype=np.float64)
    if E.shape != R.shape or E.ndim != 1 or len(E) == 0:
        raise ValueError(f"energies and reference energies must be equal-length 1-d arrays, got shapes {E.shape} and {R.shape}")
    return float(np.abs((E - E.mean()) - (R - R.mean())).mean())


def force_mae(forces, ref_forces) -> float:
    """MAE over all Cartesian components (the input's unit), frames may differ in size."""
    a = np.concatenate([np.asarray(f, dtype=np.float64).ravel() for f in forces])
    b = np.concatenate([np.asarray(f, dtype=np.float64).ravel() for f in ref_forces])
    if a.shape != b.shape:
        raise ValueError(f"force arrays differ in size: {a.size} vs {b.size} components")
    return float(np.abs(a - b).mean())


def compare_to_reference(energies, forces, ref_energies, ref_forces) -> dict:
    """Relative-energy MAE (meV) and force MAE (meV/Å) of one method or model against a reference
    (inputs in Hartree and Hartree/Bohr)."""
    return {
        "relative_energy_mae_meV": relative_energy_mae(energies, ref_energies) * HARTREE * 1e3,
        "forces_mae_meV_per_A": force_mae(forces, ref_forces) * HARTREE_PER_BOHR * 1e3,
    }


def occupied_orbital_energies(model, frames: list[dict]) -> np.ndarray:
    """Occupied eigenvalues (Hartree) of the model's F~ with each frame's reference overlap,
    shape (n_frames, n_occ); one molecule type, closed shell at the model's reference charge."""
    import scipy.linalg

    from .evaluation import reference_charge
    from .molecule import check_charge_multiplicity

    charge = reference_charge(model)
    out = []
    for f in frames:
        F = model.predict(f["numbers"], f["positions"])["fock"]
        n_occ = check_charge_multiplicity(f["numbers"], charge, 1) // 2
        out.append(scipy.linalg.eigh(F, np.asarray(f["overlap"]), eigvals_only=True)[:n_occ])
    return np.asarray(out)


def markdown_report(report: dict) -> str:
    """The comparison table of a transfer report (the dict ``training/transfer_report.py`` writes:
    ``rows`` of :func:`compare_to_reference` results, ``fine_tuned_over_hf_method`` ratios and
    optionally ``orbital_energies``)."""
    rows = report["rows"]
    lines = [
        f"Against CCSD(T)/{report['basis']}, {report['n_frames']} held-out frames ({report['split']} split, never trained on); "
        "relative energies (each set shifted by its own mean).",
        "",
        "| method or model | relative-energy MAE (meV) | force MAE (meV/Å) |",
        "|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['relative_energy_mae_meV']:.2f} | {row['forces_mae_meV_per_A']:.2f} |")
    ratio = report["fine_tuned_over_hf_method"]
    lines += [
        "",
        f"Fine-tuned model / HF method: energy {ratio['energy']:.2f}, forces {ratio['forces']:.2f} (target <= 0.5 for both).",
    ]
    if "orbital_energies" in report:
        o = report["orbital_energies"]
        lines += [
            "",
            "| occupied orbital energies, MAE (meV) | |",
            "|---|---|",
            f"| HF model vs HF reference | {o['hf_model_vs_hf_meV']:.2f} |",
            f"| fine-tuned vs HF reference | {o['fine_tuned_vs_hf_meV']:.2f} |",
            f"| fine-tuned vs HF model | {o['fine_tuned_vs_hf_model_meV']:.2f} |",
            f"| largest shift of one orbital, fine-tuned vs HF reference | {o['fine_tuned_vs_hf_max_meV']:.2f} |",
        ]
    return "\n".join(lines) + "\n"


def plot_energy_parity(path, ref_energies, predictions: dict, title: str = "") -> Path:
    """Predicted vs reference relative energies (eV), one panel per entry of ``predictions``
    (name -> energies in Hartree); the figure is written to ``path`` (PNG/PDF/SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    R = np.asarray(ref_energies, dtype=np.float64)
    r = (R - R.mean()) * HARTREE
    fig, axes = plt.subplots(1, len(predictions), figsize=(4.2 * len(predictions), 4.0), squeeze=False)
    lo, hi = r.min(), r.max()
    for ax, (name, E) in zip(axes[0], predictions.items()):
        E = np.asarray(E, dtype=np.float64)
        p = (E - E.mean()) * HARTREE
        lo, hi = min(lo, p.min()), max(hi, p.max())
        mae = relative_energy_mae(E, R) * HARTREE * 1e3
        ax.scatter(r, p, s=8, alpha=0.7)
        ax.set_title(f"{name}\nMAE {mae:.1f} meV", fontsize=10)
        ax.set_xlabel("CCSD(T) relative energy (eV)")
        ax.set_ylabel("predicted relative energy (eV)")
    pad = 0.05 * (hi - lo)
    for ax in axes[0]:
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_report(report: dict, folder) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "report.md").write_text(markdown_report(report))
    return folder / "report.json", folder / "report.md"
