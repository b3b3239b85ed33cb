"""The HF -> CCSD(T) transfer-learning table and figure, on held-out frames.

Compares with CCSD(T)/def2-SVP, on the test split recorded in the fine-tuned model:
(a) the HF model, (b) the fine-tuned model, (c) the HF and PBE methods themselves, as
relative-energy MAE and force MAE; and how far the fine-tuned F~'s occupied orbital energies
moved from Hartree–Fock's. Writes ``report.json``, ``report.md``, ``energy_parity.png`` and
``test_references.npz`` (the test frames' reference energies and forces, for the tests).

The ``report`` stage of ``training/recipes/water-ccsdt-def2svp.yaml`` runs it on that recipe's
data and models; by hand, from the repository root, with the paths of those::

    python training/transfer_report.py -o outputs/transfer
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from ase.io import read

from ase_phisnet import load_model
from ase_phisnet.training.data import load_frames
from ase_phisnet.training.energy_forces import predict_energies_forces
from ase_phisnet.transfer import compare_to_reference, occupied_orbital_energies, plot_energy_parity, write_report
from ase_phisnet.units import HARTREE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="outputs/transfer", help="report folder (default: outputs/transfer)")
    p.add_argument("--cc-data", default="runs/water-ccsdt/cc", help="CCSD(T) dataset (RHF matrices, CCSD(T) E and F)")
    p.add_argument("--hf-data", default="runs/water-ccsdt/hf", help="RHF dataset of the same frames")
    p.add_argument("--frames", default="runs/water-ccsdt/frames.xyz", help="frames file (its shared_index pairs frames with PBE)")
    p.add_argument("--pbe-data", default="../shared/data/water_pbe_def2svp_500K.h5", help="shared PBE set")
    p.add_argument("--hf-model", default="runs/water-hf-def2svp/best", help="the HF model")
    p.add_argument("--fine-tuned", default="water-ccsdt-def2svp", help="the fine-tuned model (name or folder)")
    p.add_argument("--split", default="test", choices=["test", "val"], help="held-out split of the fine-tuned model")
    args = p.parse_args(argv)

    hf_model, cc_model = load_model(args.hf_model), load_model(args.fine_tuned)
    indices = [int(i) for i in cc_model.metadata["splits"][args.split]]
    hf_train = set(int(i) for i in hf_model.metadata["splits"]["train"])
    cc_train = set(int(i) for i in cc_model.metadata["splits"]["train"])
    if hf_train & set(indices) or cc_train & set(indices):
        sys.exit("the evaluation frames overlap a model's training split; give models trained on this dataset's splits")
    cc = {int(f["index"]): f for f in load_frames(args.cc_data)[0]}
    hf = {int(f["index"]): f for f in load_frames(args.hf_data)[0]}
    cc, hf = [cc[i] for i in indices], [hf[i] for i in indices]
    shared = [int(a.info["shared_index"]) for a in read(args.frames, ":")]
    pbe_all = {int(f["index"]): f for f in load_frames(args.pbe_data)[0]}
    pbe = [pbe_all[shared[i]] for i in indices]
    for a, b, c in zip(cc, hf, pbe):
        if not (np.allclose(a["positions"], b["positions"]) and np.allclose(a["positions"], c["positions"], atol=1e-6)):
            sys.exit(f"frame {a['index']}: the CCSD(T), HF and PBE geometries differ; are these datasets of the same frames?")

    ref_E = np.array([f["energy"] for f in cc])
    ref_F = [f["forces"] for f in cc]
    E_a, F_a = predict_energies_forces(hf_model, cc)
    E_b, F_b = predict_energies_forces(cc_model, cc)
    rows = {
        "(a) HF model": compare_to_reference(E_a, F_a, ref_E, ref_F),
        "(b) fine-tuned model (water-ccsdt-def2svp)": compare_to_reference(E_b, F_b, ref_E, ref_F),
        "(c) HF/def2-SVP method": compare_to_reference([f["energy"] for f in hf], [f["forces"] for f in hf], ref_E, ref_F),
        "(c) PBE/def2-SVP method": compare_to_reference([f["energy"] for f in pbe], [f["forces"] for f in pbe], ref_E, ref_F),
        "HF model against HF (its own accuracy)": compare_to_reference(E_a, F_a, [f["energy"] for f in hf], [f["forces"] for f in hf]),
    }
    hf_row, ft_row = rows["(c) HF/def2-SVP method"], rows["(b) fine-tuned model (water-ccsdt-def2svp)"]
    eps_ref = np.array([np.asarray(f["mo_energy"])[: int(np.sum(f["numbers"])) // 2] for f in hf])
    eps_a, eps_b = occupied_orbital_energies(hf_model, hf), occupied_orbital_energies(cc_model, hf)
    meV = HARTREE * 1e3
    report = {
        "n_frames": len(indices),
        "split": args.split,
        "basis": cc_model.config.basis,
        "frame_indices": indices,
        "rows": rows,
        "fine_tuned_over_hf_method": {
            "energy": ft_row["relative_energy_mae_meV"] / hf_row["relative_energy_mae_meV"],
            "forces": ft_row["forces_mae_meV_per_A"] / hf_row["forces_mae_meV_per_A"],
        },
        "orbital_energies": {
            "hf_model_vs_hf_meV": float(np.abs(eps_a - eps_ref).mean() * meV),
            "fine_tuned_vs_hf_meV": float(np.abs(eps_b - eps_ref).mean() * meV),
            "fine_tuned_vs_hf_model_meV": float(np.abs(eps_b - eps_a).mean() * meV),
            "fine_tuned_vs_hf_max_meV": float(np.abs(eps_b - eps_ref).max() * meV),
            "fine_tuned_minus_hf_mean_per_orbital_meV": ((eps_b - eps_ref).mean(0) * meV).tolist(),
        },
        "models": {"hf": str(args.hf_model), "fine_tuned": str(args.fine_tuned)},
        "data": {"cc": args.cc_data, "hf": args.hf_data, "pbe": args.pbe_data},
    }
    json_path, md_path = write_report(report, args.output)
    fig = plot_energy_parity(
        f"{args.output}/energy_parity.png",
        ref_E,
        {"(a) HF model": E_a, "(b) fine-tuned model": E_b},
        title=f"water, {len(indices)} held-out frames, vs CCSD(T)/def2-SVP",
    )
    np.savez(
        f"{args.output}/test_references.npz",
        indices=np.array(indices),
        positions=np.array([f["positions"] for f in cc]),
        numbers=np.asarray(cc[0]["numbers"]),
        energy_ccsd_t=ref_E,
        forces_ccsd_t=np.array(ref_F),
        energy_hf=np.array([f["energy"] for f in hf]),
        forces_hf=np.array([f["forces"] for f in hf]),
    )
    print(md_path.read_text())
    print(f"wrote {json_path}, {md_path}, {fig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
