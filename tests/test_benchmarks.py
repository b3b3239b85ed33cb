"""Smoke test of benchmarks/calculator_speed.py: its helpers run end to end on two water frames.

Nothing here checks a time (the machines are shared and noisy); only that every number is
produced, the tables and JSON have their columns, the breakdown's hand-made step gives the
calculator's forces on either engine, and the float32 calculator's forces stay close to float64.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from ase_phisnet.native import native_available

from .conftest import WATER_H5, require_reference

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calculator_speed.py"

#: Two timed frames, one breakdown frame done once: every option runs, in seconds.
QUICK = ["--molecules", "water", "--frames", "2", "--breakdown-frames", "1", "--breakdown-repeats", "1"]


def _load_script():
    spec = importlib.util.spec_from_file_location("calculator_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _check_breakdown(bench, breakdown: dict, engine: str) -> None:
    assert breakdown["engine"] == engine
    assert breakdown["max_force_difference_eV_per_A"] < 1e-8 and breakdown["max_energy_difference_eV"] < 1e-8
    for part in ("full_step", *bench.BREAKDOWN_PARTS, *bench.EXTRA_PARTS):
        assert breakdown[f"{part}_ms"] > 0, part
    assert math.isfinite(breakdown["other_ms"])


@pytest.mark.slow
def test_calculator_speed_runs_on_two_water_frames(tmp_path, capsys):
    require_reference(WATER_H5)
    bench = _load_script()
    out = tmp_path / "speed.json"
    bench.main([*QUICK, "--pyscf-frames", "1", "--compare-float32", "--json", str(out)])
    printed = capsys.readouterr().out
    engine = "native" if native_available() else "torch"  # what the calculator picks by default
    assert "| water | 24 |" in printed and "PySCF / PhiSNet" in printed and f"engine {engine} (" in printed
    assert "network backward" in printed and "dipole + charges (when asked)" in printed and f"| water | {engine} |" in printed
    assert "| float64 / float32 |" in printed and "Target: ethanol at least 1.5x faster in float32" in printed

    result = json.loads(out.read_text())
    assert result["machine"]["torch_threads"] == 1 and result["machine"]["pyscf_threads"] == 1
    assert result["settings"]["engine"] == "auto" and result["settings"]["compare_float32"] is True
    (water,) = result["molecules"]
    assert water["aos"] == 24 and water["model"] == "water-pbe-def2svp" and water["dtype"] == "float64" and water["engine"] == engine
    assert water["phisnet_frames"] == 2 and len(water["phisnet_step_ms"]) == 2 and water["pyscf_frames"] == 1
    for key in ("model_load_ms", "cold_first_call_ms", "phisnet_step_median_ms", "pyscf_mean_ms", "ratio_pyscf_over_phisnet"):
        assert water[key] > 0 and math.isfinite(water[key]), key
    assert water["target_ratio"] == 200 and isinstance(water["target_met"], bool)
    _check_breakdown(bench, water["breakdown"], engine)

    f32 = water["float32_comparison"]
    assert f32["engine"] == engine and f32["frames"] == 2 and len(f32["float32_step_ms"]) == len(f32["float64_step_ms"]) == 2
    for key in ("float64_step_median_ms", "float32_step_median_ms", "speedup_float64_over_float32"):
        assert f32[key] > 0 and math.isfinite(f32[key]), key
    assert 0 < f32["max_force_difference_eV_per_A"] < bench.FLOAT32_FORCE_TOLERANCE and f32["forces_within_tolerance"]
    assert f32["target_speedup"] is None and f32["target_met"] is None  # the target is ethanol's


@pytest.mark.slow
def test_calculator_speed_on_the_torch_engine_in_float32(tmp_path, capsys):
    """``--engine torch --dtype float32``: the torch breakdown with the network in float32 and
    the electronic step in float64, as the calculator's torch step runs them."""
    require_reference(WATER_H5)
    bench = _load_script()
    out = tmp_path / "speed.json"
    bench.main([*QUICK, "--pyscf-frames", "0", "--no-xtb", "--engine", "torch", "--dtype", "float32", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "in float32" in printed and "engine torch (" in printed and "| water | torch |" in printed and "float64 / float32" not in printed
    (water,) = json.loads(out.read_text())["molecules"]
    assert water["engine"] == "torch" and water["dtype"] == "float32" and water["target_met"] is None and water["float32_comparison"] is None
    _check_breakdown(bench, water["breakdown"], "torch")


def test_compare_float32_needs_a_float64_run():
    bench = _load_script()
    with pytest.raises(SystemExit):
        bench.parse_args(["--dtype", "float32", "--compare-float32"])
    args = bench.parse_args([])
    assert args.engine == "auto" and not args.compare_float32


def test_sampled_frames_are_a_seeded_trajectory():
    pytest.importorskip("tblite")
    bench = _load_script()
    frames, origin = bench.load_frames("malondialdehyde", 2)
    again, _ = bench.load_frames("malondialdehyde", 2)
    assert len(frames) == 2 and frames[0].get_chemical_formula() == "C3H4O2"
    assert origin["temperature"] == 500.0 and origin["stride_fs"] == 10.0
    assert (frames[1].positions != frames[0].positions).any()
    assert all((a.positions == b.positions).all() for a, b in zip(frames, again))


@pytest.mark.slow
def test_replica_throughput_runs(capsys):
    """benchmarks/replica_throughput.py: one evaluate_batch call per N, cost per structure."""
    spec = importlib.util.spec_from_file_location("replica_throughput", SCRIPT.parent / "replica_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec.loader.exec_module(module)
        result = module.main(["--molecules", "water", "--sizes", "1", "3", "--repeats", "1"])
    finally:
        sys.path.remove(str(SCRIPT.parent))
    (row,) = result["rows"]
    assert set(row["per_structure_ms"]) == {1, 3} and all(v > 0 for v in row["per_structure_ms"].values())
    assert "| water |" in capsys.readouterr().out


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_force_error_tail_marks_frames_outside_the_training_range():
    tail = _load("force_error_tail")
    pair_range = {"1-8": [0.9, 1.1], "1-1": [1.4, 1.7]}
    inside = {"numbers": [8, 1, 1], "positions": [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]}
    stretched = {"numbers": [8, 1, 1], "positions": [[0, 0, 0], [1.2, 0, 0], [-0.24, 0.93, 0]]}
    carbon = {"numbers": [6, 1], "positions": [[0, 0, 0], [1.0, 0, 0]]}  # no 1-6 pair in the range
    assert tail.outside_range([inside, stretched, carbon], pair_range).tolist() == [False, True, True]


def test_force_error_tail_runs_on_the_shipped_model(tmp_path, capsys):
    require_reference(WATER_H5)
    tail = _load("force_error_tail")
    out = tmp_path / "tail.json"
    result = tail.main(["--dataset", str(WATER_H5), "--split", "val", "--max-frames", "4", "--json", str(out), "--no-progress"])
    assert result["n_frames"] == 4 and json.loads(out.read_text())["n_frames"] == 4
    assert 0 < result["worst_tenth_share"] <= 1 and 0 <= result["outside_range_share"] <= 1
    assert result["forces_median_meV_per_A"] > 0 and len(result["worst"]) == 4
    assert "outside the training range" in capsys.readouterr().out
