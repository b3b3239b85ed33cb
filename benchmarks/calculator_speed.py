"""Energy+forces step time of PhiSNetCalculator against PySCF PBE/def2-SVP and GFN2-xTB.

All three run on the same geometries in the same process, one after the other, and the script
prints time ratios (these machines are shared and noisy: compare within one run only).
PhiSNet uses a model with F~ and H~core heads; random weights are fine for timing (pass
``--model`` for a trained one). The PySCF step is what the calculator replaces: RKS energy plus
analytic gradient, conv_tol 1e-9, grid level 3, from the default guess.

    python benchmarks/calculator_speed.py                  # water and ethanol, 3 geometries each
    python benchmarks/calculator_speed.py --frames 5 --device cuda
    python benchmarks/calculator_speed.py --dtype float32   # the network and eigensolver in float32
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from ase import Atoms

MOLECULES = {"water": "../shared/data/water_pbe_def2svp_500K.h5", "ethanol": "../shared/data/ethanol_pbe_def2svp_500K.h5"}


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="PhiSNet's precision (float64: finite-difference-exact forces)")
    p.add_argument("--preset", default="small")
    p.add_argument("--features", type=int, default=32, help="features of the random-weight model (shipped water model: 32)")
    p.add_argument("--model", help="trained model with an hcore head (default: random weights)")
    args = p.parse_args()

    from pyscf import dft, lib

    try:
        from tblite.ase import TBLite
    except ImportError:  # the GFN2-xTB column is left empty where tblite is not installed
        TBLite = None

    from ase_phisnet.calculator import PhiSNetCalculator
    from ase_phisnet.model import PhiSNetConfig, build_model
    from ase_phisnet.model.io import load_model
    from ase_phisnet.molecule import build_mol
    from ase_phisnet.training.data import load_frames

    print(f"PhiSNet on {args.device} in {args.dtype}, {torch.get_num_threads()} torch threads; PySCF on {lib.num_threads()} threads")
    print("| molecule | PhiSNet E+F (ms) | page faults per PhiSNet step | PySCF PBE E+F (ms) | GFN2-xTB E+F (ms) | PySCF / PhiSNet | xTB / PhiSNet |")
    print("|---|---|---|---|---|---|---|")
    for name, path in MOLECULES.items():
        frames, _ = load_frames(path)
        frames = frames[: args.frames]
        numbers = frames[0]["numbers"]
        if args.model:
            model = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
        else:
            torch.manual_seed(0)
            # the shipped water model's architecture (H~core on top of the exact T + V_nuc)
            cfg = PhiSNetConfig.from_preset(args.preset, elements=sorted(set(numbers.tolist())), heads=["fock", "hcore"], features=args.features, core_baseline=True)
            model = build_model(cfg, getattr(torch, args.dtype), args.device)
        calc = PhiSNetCalculator(model, device=args.device, dtype=args.dtype)
        xtb = TBLite(method="GFN2-xTB", verbosity=0) if TBLite else None
        t_ml, t_dft, t_xtb, faults = [], [], [], []
        for f in frames:
            atoms = Atoms(numbers=f["numbers"], positions=f["positions"])

            def step_ml():
                atoms.calc = calc
                calc.reset()
                atoms.get_forces()

            def step_dft():
                mf = dft.RKS(build_mol(f["numbers"], f["positions"]), xc="pbe")
                mf.conv_tol = 1e-9
                mf.kernel()
                mf.nuc_grad_method().kernel()

            def step_xtb():
                atoms.calc = xtb
                xtb.reset()
                atoms.get_forces()

            step_ml()  # warm-up: e3nn code generation, PySCF Mole set-up
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t_ml.append(timed(step_ml, 5))
            faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
            t_dft.append(timed(step_dft, 1))
            t_xtb.append(timed(step_xtb, 5) if xtb else float("nan"))
        ml, ref, xt = (1e3 * float(np.mean(t)) for t in (t_ml, t_dft, t_xtb))
        xt_ms, xt_ratio = (f"{xt:.2f}", f"{xt / ml:.3g}x") if xtb else ("n/a", "n/a")
        print(f"| {name} | {ml:.1f} | {np.mean(faults):.0f} | {ref:.0f} | {xt_ms} | {ref / ml:.0f}x | {xt_ratio} |")


if __name__ == "__main__":
    main()
