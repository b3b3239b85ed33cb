"""benchmarks/learning_curves.py: the CPU clock it reads, the common budget and the power-law tail."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learning_curves.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("learning_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_metrics(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True)
    with open(folder / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_curves_read_the_cpu_clock_and_fit_the_tail(bench, tmp_path):
    # MAE = 100 h^-0.5 in CPU hours; the wall clock ran at half the CPU's pace (two threads)
    hours = [0.05 * k for k in range(1, 21)]
    rows = [{"step": 100 * k, "elapsed_s": 1800 * h, "cpu_s": 3600 * h, "val_fock_mae_uEh": 100 * h**-0.5} for k, h in enumerate(hours, 1)]
    write_metrics(tmp_path / "a", rows)
    curve = bench.read_curve(tmp_path / "a", threads=2)
    assert [round(h, 9) for h, _, _ in curve] == [round(h, 9) for h in hours] and curve[-1][2] == 2000
    a, b = bench.power_law_tail(curve)
    assert a == pytest.approx(100, rel=1e-9) and b == pytest.approx(0.5, rel=1e-9)
    assert bench.at_budget(curve, 0.25) == pytest.approx(100 * 0.25**-0.5)
    # rows written before the trainer kept a CPU clock: wall time x threads
    write_metrics(tmp_path / "b", [{k: v for k, v in r.items() if k != "cpu_s"} for r in rows])
    assert bench.read_curve(tmp_path / "b", threads=2)[-1][0] == pytest.approx(hours[-1])
    assert bench.read_curve(tmp_path / "missing", threads=1) == []


def test_plot_only_tabulates_at_the_common_budget(bench, tmp_path, capsys):
    for name, scale, n in (("phisnet-32x2", 100, 20), ("phisnet-64x2", 80, 10)):
        rows = [{"step": k, "elapsed_s": 180 * k, "cpu_s": 180 * k, "val_fock_mae_uEh": scale * (0.05 * k) ** -0.5} for k in range(1, n + 1)]
        write_metrics(tmp_path / name, rows)
    bench.main(["--plot-only", "--out", str(tmp_path), "--candidates", "phisnet-32x2", "phisnet-64x2", "--figure", str(tmp_path / "lc.png"), "--csv", str(tmp_path / "lc.csv")])
    table = capsys.readouterr().out
    points = list(csv.DictReader(open(tmp_path / "lc.csv")))
    assert len(points) == 30 and points[-1]["candidate"] == "phisnet-64x2" and float(points[-1]["cpu_hours"]) == pytest.approx(0.5)
    assert (tmp_path / "lc.png").stat().st_size > 1000
    assert "at 0.50 CPU h" in table  # the shorter run's end
    row = next(line for line in table.splitlines() if line.startswith("| phisnet-32x2"))
    assert f"| {100 * 0.5 ** -0.5:.1f} |" in row and "| 0.50 |" in row
