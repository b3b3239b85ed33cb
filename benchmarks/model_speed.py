"""Forward time per structure and peak memory of PhiSNet, water and ethanol, small and paper presets.

Each (preset, molecule, device) runs in its own subprocess so that peak memory is its own:
CPU peak = the growth of the process' maximum resident set size from after the imports to
after the forward passes (model, graph and activations); GPU peak = ``torch.cuda.max_memory_allocated``. Times are medians
over repeats in one run; compare rows with each other, not across machines.

    python benchmarks/model_speed.py                 # CPU, both presets, both molecules
    python benchmarks/model_speed.py --device cuda   # where a GPU is present
    python benchmarks/model_speed.py --presets small --repeats 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MOLECULES = {"water": "../shared/data/water_pbe_def2svp_500K.h5", "ethanol": "../shared/data/ethanol_pbe_def2svp_500K.h5"}


def measure(preset: str, molecule: str, device: str, repeats: int, batch: int, dtype: str) -> dict:
    import resource
    import statistics
    import time

    import h5py
    import torch

    from ase_phisnet.model import PhiSNetConfig, build_model
    from ase_phisnet.units import BOHR

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after imports, before the model
    with h5py.File(MOLECULES[molecule], "r") as h5:
        numbers = h5["numbers"][()]
        positions = h5["positions"][:batch] / BOHR
    model = build_model(PhiSNetConfig.from_preset(preset, elements=sorted(set(numbers.tolist()))), getattr(torch, dtype), device).eval()
    graph = model.graph([numbers] * batch, list(positions))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        model(graph)  # warm-up (e3nn code generation, allocator)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(graph)
            sync()
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return {
        "preset": preset,
        "molecule": molecule,
        "device": device,
        "dtype": dtype,
        "batch": batch,
        "params": sum(p.numel() for p in model.parameters()),
        "ms_per_structure": 1e3 * statistics.median(times) / batch,
        "ms_per_batch": 1e3 * statistics.median(times),
        "peak_mem_MiB": peak,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["small", "paper"])
    p.add_argument("--molecules", nargs="+", default=list(MOLECULES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=8, help="structures per forward pass")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        preset, molecule = args.one.split(":")
        print(json.dumps(measure(preset, molecule, args.device, args.repeats, args.batch, args.dtype)))
        return
    rows = []
    for preset in args.presets:
        for molecule in args.molecules:
            cmd = [sys.executable, __file__, "--one", f"{preset}:{molecule}", "--device", args.device, "--dtype", args.dtype, "--repeats", str(args.repeats), "--batch", str(args.batch)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{preset}/{molecule}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| preset | molecule | device | dtype | params | ms / structure (batch {args.batch}) | peak memory (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['molecule']} | {r['device']} | {r['dtype']} | {r['params']:,} | {r['ms_per_structure']:.2f} | {r['peak_mem_MiB']:.0f} |")
    if len({r["preset"] for r in rows}) == 2:
        for m in args.molecules:
            sel = {r["preset"]: r for r in rows if r["molecule"] == m}
            if len(sel) == 2:
                print(f"{m}: paper / small time ratio {sel['paper']['ms_per_structure'] / sel['small']['ms_per_structure']:.1f}")


if __name__ == "__main__":
    main()
