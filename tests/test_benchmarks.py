"""Smoke test of benchmarks/calculator_speed.py: its helpers run end to end on two water frames.

Nothing here checks a time (the machines are shared and noisy); only that every number is
produced, the table and JSON have their columns, and the breakdown's hand-made step gives the
calculator's forces.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from .conftest import WATER_H5, require_reference

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calculator_speed.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("calculator_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_calculator_speed_runs_on_two_water_frames(tmp_path, capsys):
    require_reference(WATER_H5)
    bench = _load_script()
    out = tmp_path / "speed.json"
    bench.main(["--molecules", "water", "--frames", "2", "--pyscf-frames", "1", "--breakdown-frames", "1", "--breakdown-repeats", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| water | 24 |" in printed and "PySCF / PhiSNet" in printed and "network backward" in printed

    result = json.loads(out.read_text())
    assert result["machine"]["torch_threads"] == 1 and result["machine"]["pyscf_threads"] == 1
    (water,) = result["molecules"]
    assert water["aos"] == 24 and water["model"] == "water-pbe-def2svp" and water["dtype"] == "float64"
    assert water["phisnet_frames"] == 2 and len(water["phisnet_step_ms"]) == 2 and water["pyscf_frames"] == 1
    for key in ("model_load_ms", "cold_first_call_ms", "phisnet_step_median_ms", "pyscf_mean_ms", "ratio_pyscf_over_phisnet"):
        assert water[key] > 0 and math.isfinite(water[key]), key
    assert water["target_ratio"] == 200 and isinstance(water["target_met"], bool)
    breakdown = water["breakdown"]
    assert breakdown["max_force_difference_eV_per_A"] < 1e-8
    for part in (*bench.BREAKDOWN_PARTS, "full_step"):
        assert breakdown[f"{part}_ms"] > 0, part


def test_sampled_frames_are_a_seeded_trajectory():
    pytest.importorskip("tblite")
    bench = _load_script()
    frames, origin = bench.load_frames("malondialdehyde", 2)
    again, _ = bench.load_frames("malondialdehyde", 2)
    assert len(frames) == 2 and frames[0].get_chemical_formula() == "C3H4O2"
    assert origin["temperature"] == 500.0 and origin["stride_fs"] == 10.0
    assert (frames[1].positions != frames[0].positions).any()
    assert all((a.positions == b.positions).all() for a, b in zip(frames, again))
