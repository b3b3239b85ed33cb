"""Orbital energy level diagram: the model's levels beside the reference's.

Energies in eV. Occupied levels are drawn solid, virtual ones dashed; the HOMO and LUMO are
labelled and matching levels of neighbouring columns are joined by thin lines, so shifts and
reorderings show at a glance. Deep core levels would squash the valence region, so by default
only levels above ``window[0]`` eV are drawn and the figure says how many were left out.
"""

from __future__ import annotations

import numpy as np

from ..units import HARTREE


def plot_level_diagram(structures, window=(-40.0, None), n_virtual: int = 6):
    """One column of levels per :class:`ElectronicStructure`; returns the figure.

    Parameters
    ----------
    structures : sequence of ElectronicStructure
        Same molecule, e.g. ``[model, dft]``.
    window : (low, high) in eV
        Energy range drawn; ``None`` for no bound. Levels below ``low`` are counted, not drawn.
    n_virtual : int
        Virtual orbitals drawn above the HOMO.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.2 + 1.9 * len(structures), 5.5), constrained_layout=True)
    low, high = window
    hidden = 0
    shown_by_column = []
    for col, s in enumerate(structures):
        eps = np.asarray(s.mo_energy) * HARTREE
        last = min(len(eps), s.n_occ + n_virtual)
        keep = [i for i in range(last) if (low is None or eps[i] >= low) and (high is None or eps[i] <= high)]
        hidden = max(hidden, sum(1 for i in range(s.n_occ) if low is not None and eps[i] < low))
        shown_by_column.append({i: eps[i] for i in keep})
        for i in keep:
            occupied = i < s.n_occ
            ax.hlines(eps[i], col - 0.3, col + 0.3, colors="tab:blue" if occupied else "tab:red", linestyles="-" if occupied else "--", lw=2)
        homo, lumo = eps[s.n_occ - 1], eps[s.n_occ] if s.n_occ < len(eps) else None
        ax.annotate("HOMO", (col + 0.32, homo), va="center", fontsize=8, color="tab:blue")
        if lumo is not None:
            ax.annotate("LUMO", (col + 0.32, lumo), va="center", fontsize=8, color="tab:red")
            ax.annotate(f"gap {lumo - homo:.2f} eV", (col, 0.5 * (homo + lumo)), ha="center", va="center", fontsize=8, color="0.3")
    for col in range(len(structures) - 1):
        left, right = shown_by_column[col], shown_by_column[col + 1]
        for i in set(left) & set(right):
            ax.plot([col + 0.3, col + 0.7], [left[i], right[i]], color="0.6", lw=0.6, ls=":")
    ax.set_xticks(range(len(structures)), [s.label for s in structures])
    ax.set_xlim(-0.6, len(structures) - 0.2)
    ax.set_ylabel("orbital energy (eV)")
    note = f" ({hidden} core level{'s' if hidden != 1 else ''} below {low:.0f} eV not shown)" if hidden else ""
    ax.set_title("orbital energies" + note, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color="tab:blue", lw=2, label="occupied"), Line2D([], [], color="tab:red", lw=2, ls="--", label="virtual")], loc="lower right", fontsize=8)
    return fig
