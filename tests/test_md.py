"""MD runs: log, trajectory and figure; a second run continues from the last frame."""

import numpy as np
from ase.build import molecule
from ase.io import read

import ase_phisnet
from ase_phisnet.calculator import PhiSNetCalculator
from ase_phisnet.md import read_log, run_md


def test_md_writes_its_record_and_continues_from_the_last_frame(tmp_path):
    model = ase_phisnet.load_model("water-pbe-def2svp")
    first = run_md(molecule("H2O"), tmp_path, model=PhiSNetCalculator(model), steps=20, interval=5, progress=False)
    assert first["frames"] == 5 and first["time_fs"] == 5.0
    assert first["wall_time_s"] > 0 and abs(first["steps_per_second"] * first["wall_time_s"] - 20) < 1e-9
    last = read(tmp_path / "md.traj", -1)
    second = run_md(molecule("H2O"), tmp_path, model=PhiSNetCalculator(model), steps=10, interval=5, progress=False)
    log = read_log(tmp_path / "md_log.csv")
    assert np.allclose(log["time_fs"], np.arange(0, 7.5 + 1e-9, 1.25))  # no repeated frame
    frames = read(tmp_path / "md.traj", ":")
    assert len(frames) == len(log["time_fs"]) == second["frames"] == 7
    # the continuation started where the first run stopped, with its velocities
    assert np.allclose(frames[4].positions, last.positions) and np.allclose(frames[4].get_velocities(), last.get_velocities())
    assert np.allclose(log["etot_eV"], log["epot_eV"] + log["ekin_eV"], atol=1e-6)
    assert (tmp_path / "md_energies.png").stat().st_size > 10_000


def test_md_cli_reports_bad_input(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ase_phisnet.cli.main", *map(str, args)], capture_output=True, text=True)

    out = cli("md", tmp_path / "missing.xyz", "-o", tmp_path / "md")
    assert out.returncode == 2 and "missing.xyz does not exist" in out.stderr
    out = cli("md", "-o", tmp_path / "md", "--steps", "0")
    assert out.returncode == 2 and "steps and interval must be positive" in out.stderr
    out = cli("md", "-o", tmp_path / "md", "--steps", "2", "--interval", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("2 steps in ") and "steps/s" in out.stdout  # the run's speed, last
    out = cli("optimize", tmp_path / "missing.xyz", "-o", tmp_path / "opt")
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_replicas_step_together_and_each_equals_its_own_run(tmp_path, capsys):
    """Replica k is the run with seed k: the batched force evaluation changes no number."""
    from ase_phisnet.cli.main import main
    from ase_phisnet.md import run_md_replicas

    calc = PhiSNetCalculator(ase_phisnet.load_model("water-pbe-def2svp"))
    calls = []
    evaluate = calc.evaluate_batch
    calc.evaluate_batch = lambda images: calls.append(len(images)) or evaluate(images)
    summary = run_md_replicas(molecule("H2O"), tmp_path / "ens", 3, model=calc, ensemble="nvt", steps=8, interval=4, progress=False)
    assert len(summary["replicas"]) == 3 and summary["steps_per_second"] > 0
    assert calls and all(n == 3 for n in calls)  # every force evaluation held all three replicas
    single = run_md(molecule("H2O"), tmp_path / "one", model=PhiSNetCalculator(calc.model), ensemble="nvt", seed=2, steps=8, interval=4, progress=False)
    a, b = read(tmp_path / "ens" / "replica_002" / "md.traj", ":"), read(tmp_path / "one" / "md.traj", ":")
    assert len(a) == len(b) == single["frames"] == 3
    assert all(np.array_equal(x.positions, y.positions) and np.array_equal(x.get_velocities(), y.get_velocities()) for x, y in zip(a, b))
    assert not np.allclose(read(tmp_path / "ens" / "replica_000" / "md.traj").get_velocities(), a[0].get_velocities())  # seeds differ
    # the command line: --replicas, and its rate line
    assert main(["md", "-o", str(tmp_path / "cli"), "--replicas", "2", "--steps", "4", "--interval", "2", "--no-progress"]) == 0
    assert "2 replicas x 4 steps" in capsys.readouterr().out and (tmp_path / "cli" / "replica_001" / "md.traj").exists()
    assert main(["md", "-o", str(tmp_path / "bad"), "--replicas", "0"]) == 2
