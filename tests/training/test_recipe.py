"""Recipes: a two-stage miniature run end to end, killed (SIGKILL) inside a stage and between the
stages and resumed, lands on the same weights;
`--list` reports the stages' states; bad recipes are refused naming the stage and the key."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from ase_phisnet import load_model
from ase_phisnet.cli.main import main
from ase_phisnet.errors import ConfigError
from ase_phisnet.recipes import load_recipe, run_recipe

from ..conftest import WATER_H5, require_reference

#: A tiny model on a handful of water frames: the second stage starts from the first's best.
MINI = {
    "name": "mini",
    "train_defaults": {
        "dataset": str(WATER_H5),
        "splits": {"n_train": 6, "n_val": 3, "n_test": 3, "seed": 1},
        "model": {"preset": "small", "features": 4, "num_interactions": 1, "num_radial": 8, "radial_hidden": 8, "lmax": 2},
        "batch_size": 3,
        "dtype": "float64",
        "val_every": 2,
    },
    "stages": [
        {"name": "fock", "note": "F~ from scratch", "train": {"loss": {"fock": 1.0}, "max_steps": 30}},
        {"name": "more", "note": "F~ continued", "train": {"init_from": {"stage": "fock"}, "loss": {"fock": 1.0}, "optimizer": {"lr": 5.0e-4}, "max_steps": 6}},
    ],
}


def write_recipe(tmp_path, name, recipe=None, **top):
    data = {**(recipe or MINI), "output": str(tmp_path / name), **top}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def listing(path, capsys) -> str:
    capsys.readouterr()
    assert main(["train", str(path), "--list"]) == 0
    return capsys.readouterr().out


def train_command(recipe) -> list[str]:
    """The recipe's command line. Every run of the comparison is one such fresh process: bit-for-bit
    equality holds for equal thread counts (torch, BLAS, OpenMP) and equal process state, which a
    test process that has run other tests does not keep."""
    return [sys.executable, "-m", "ase_phisnet.cli.main", "train", str(recipe), "--no-progress", "--threads", "1"]


def test_killed_recipe_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, capsys):
    require_reference(WATER_H5)
    straight = write_recipe(tmp_path, "straight")
    assert "not started" in listing(straight, capsys)
    subprocess.run(train_command(straight), check=True, capture_output=True)
    assert (tmp_path / "straight" / "ship" / "mini" / "model.safetensors").exists()

    # killed inside the first stage, after its first checkpoint
    killed = write_recipe(tmp_path, "killed")
    proc = subprocess.Popen(train_command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "fock" / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = listing(killed, capsys).splitlines()
    assert "fock" in lines[1] and "partial at step" in lines[1] and "of 30" in lines[1], lines
    assert "more" in lines[2] and "not started" in lines[2], lines
    assert "not done" in lines[3], lines

    # resumed, and killed again as soon as the first stage is recorded done: between the stages
    proc = subprocess.Popen(train_command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = tmp_path / "killed" / "fock" / "stage.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(record.read_text()).get("done"):
                break
        except (OSError, ValueError):  # not written yet
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = listing(killed, capsys).splitlines()
    assert "done: best at step" in lines[1] and "30 steps run" in lines[1] and "done" not in lines[2], lines

    # the same command again finishes the recipe and ships
    out = subprocess.run(train_command(killed), check=True, capture_output=True, text=True).stdout
    assert "[1/2] fock (train): done, skipped" in out and "shipped mini to" in out
    lines = listing(killed, capsys).splitlines()
    assert all("done" in line for line in lines[1:]) and "not done" not in lines[3], lines

    a = load_file(str(tmp_path / "straight" / "ship" / "mini" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "ship" / "mini" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # the shipped model: its splits in splits.json, its stages and test figures in the metadata
    folder = tmp_path / "killed" / "ship" / "mini"
    config = json.loads((folder / "config.json").read_text())
    assert config["metadata"]["splits"]["file"] == "splits.json" and "train" not in config["metadata"]["splits"]
    model = load_model(folder)
    assert len(model.metadata["splits"]["train"]) == 6 and len(model.metadata["splits"]["test"]) == 3
    assert [s["stage"] for s in model.metadata["training"]["stages"]] == ["fock", "more"]
    assert model.metadata["training"]["stages"][0]["what"] == "F~ from scratch"
    assert "base_model" not in model.metadata  # the first stage started from scratch
    assert model.metadata["test_metrics"]["n_frames"] == 3

    # a finished recipe run again does nothing
    capsys.readouterr()
    assert main(["train", str(killed), "--no-progress", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "[2/2] more (train): done, skipped" in out and "skipped" in out.splitlines()[-1]


def test_a_stage_from_a_model_records_it_as_the_base(tmp_path):
    require_reference(WATER_H5)
    from ase_phisnet.model import PhiSNetConfig, build_model
    from ase_phisnet.model.io import save_model
    from ase_phisnet.recipes import provenance

    base = tmp_path / "base"
    save_model(build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], **{k: v for k, v in MINI["train_defaults"]["model"].items() if k != "preset"})), base)
    stage = {"name": "on", "train": {"init_from": str(base), "loss": {"fock": 1.0}, "max_steps": 2}}
    path = write_recipe(tmp_path, "on", recipe={**MINI, "stages": [stage]})
    recipe = load_recipe(path)
    run_recipe(recipe, ship=False, progress=False, log=lambda line: None)
    sha = json.loads((base / "config.json").read_text())["weights_sha256"]
    assert provenance(recipe)["base_model"] == {"name": "base", "weights_sha256": sha}  # a folder outside the working directory: its name
    assert provenance(recipe)["training"]["stages"][0]["steps"] == 2


def test_a_committed_checkpoint_stands_for_its_stage_on_a_fresh_checkout(tmp_path, capsys):
    """fock commits its model; without the run folder it counts as done and more starts from the
    committed weights. Then more commits to the same folder: fock is superseded and not trained
    again, and fock run elsewhere leaves more's checkpoint alone."""
    require_reference(WATER_H5)
    import shutil

    from ase_phisnet.recipes import commit_checkpoint

    ckpt = tmp_path / "checkpoints" / "mini"
    fock, more = ({**stage, "checkpoint": str(ckpt)} for stage in MINI["stages"])
    last = {"name": "last", "note": "on more", "train": {"init_from": {"stage": "more"}, "loss": {"fock": 1.0}, "max_steps": 2}}
    path = write_recipe(tmp_path, "c", recipe={**MINI, "stages": [fock, {k: v for k, v in more.items() if k != "checkpoint"}]})
    run_recipe(load_recipe(path), until="fock", progress=False, log=lambda line: None)
    record = json.loads((ckpt / "config.json").read_text())
    assert record["metadata"]["recipe_stage"]["stage"] == "fock" and record["metadata"]["recipe_stage"]["state"]["done"]
    assert record["weights_sha256"] == json.loads((tmp_path / "c" / "fock" / "best" / "config.json").read_text())["weights_sha256"]
    shutil.rmtree(tmp_path / "c")  # a fresh checkout: the committed folder, no run folder
    assert "committed: " in listing(path, capsys).splitlines()[1]
    run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)
    assert not (tmp_path / "c" / "fock").exists()  # not trained again
    inputs = json.loads((tmp_path / "c" / "more" / "stage.json").read_text())["inputs"]
    assert inputs == {"init_from": {"stage": "fock", "weights_sha256": record["weights_sha256"]}}

    path = write_recipe(tmp_path, "d", recipe={**MINI, "stages": [fock, more, last]})
    run_recipe(load_recipe(path), until="more", progress=False, log=lambda line: None)
    assert json.loads((ckpt / "config.json").read_text())["metadata"]["recipe_stage"]["stage"] == "more"
    assert not (tmp_path / "d" / "fock").exists()  # fock's committed model (the same recipe, mini) was taken; now more's is there
    lines = []
    run_recipe(load_recipe(path), ship=False, progress=False, log=lines.append)
    assert lines[0] == f"[1/3] fock (train): skipped, stage 'more' after it is committed ({ckpt})"
    assert not (tmp_path / "d" / "fock").exists() and (tmp_path / "d" / "last" / "best").is_dir()
    assert "not run: stage 'more' after it is committed" in listing(path, capsys).splitlines()[1]
    lines = []
    run_recipe(load_recipe(path, output=tmp_path / "fresh"), ship=False, progress=False, log=lines.append)  # a fresh checkout
    assert lines[0].endswith("skipped, stage 'more' after it is committed (" + str(ckpt) + ")") and lines[1] == "[2/3] more (train): done, skipped"
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["last"]
    from ase_phisnet.recipes import provenance

    told = provenance(load_recipe(path, output=tmp_path / "fresh"))["training"]["stages"]
    assert [(s["stage"], s["steps"] is not None) for s in told] == [("fock", True), ("more", True), ("last", True)]  # fock's record kept by more's checkpoint
    again = load_recipe(path, output=tmp_path / "elsewhere")
    run_recipe(again, until="fock", progress=False, log=lambda line: None)  # fock itself, trained in another folder
    assert commit_checkpoint(again, again.stage("fock"), log=lambda line: None) is None
    assert json.loads((ckpt / "config.json").read_text())["metadata"]["recipe_stage"]["stage"] == "more"


def test_a_stopped_stage_ends_where_it_stands_when_max_steps_comes_down_to_its_checkpoint(tmp_path):
    require_reference(WATER_H5)
    from ase_phisnet.training import Trainer

    long = {"name": "fock", "note": "F~, stopped by hand", "train": {"loss": {"fock": 1.0}, "max_steps": 100}}
    path = write_recipe(tmp_path, "s", recipe={**MINI, "stages": [long]})
    recipe = load_recipe(path)
    recipe.begin(recipe.stage("fock"))  # started with max_steps 100 ...
    config = recipe.train_config(recipe.stage("fock"))
    config.max_steps = 4
    Trainer(config, progress=False).fit()  # ... and stopped after its checkpoint at step 4
    for steps, accepted in ((2, False), (4, True)):
        path = write_recipe(tmp_path, "s", recipe={**MINI, "stages": [{**long, "train": {**long["train"], "max_steps": steps}}]})
        if not accepted:
            with pytest.raises(ConfigError, match="started with other settings \\(max_steps changed since\\)"):
                run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)
            continue
        run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)
        state = json.loads((tmp_path / "s" / "fock" / "stage.json").read_text())
        assert state["done"] and state["settings"]["max_steps"] == 4 and state["run_steps"] == 4
    # a checkpoint: named after the stage finished is written on the next run
    path = write_recipe(tmp_path, "s", recipe={**MINI, "stages": [{**long, "checkpoint": str(tmp_path / "ckpt"), "train": {**long["train"], "max_steps": 4}}]})
    run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["metadata"]["recipe_stage"]["state"]["run_steps"] == 4


def test_a_model_trained_in_float32_ships_in_float32(tmp_path):
    require_reference(WATER_H5)
    from pathlib import Path

    defaults = {**MINI["train_defaults"], "dtype": "float32"}
    stage = {"name": "fock", "note": "F~ from scratch", "train": {"loss": {"fock": 1.0}, "max_steps": 2}}
    path = write_recipe(tmp_path, "f32", recipe={**MINI, "train_defaults": defaults, "stages": [stage]})
    shipped = run_recipe(load_recipe(path), progress=False, log=lambda line: None)
    stored = load_file(str(Path(shipped["path"]) / "model.safetensors"))
    best = load_file(str(tmp_path / "f32" / "fock" / "best" / "model.safetensors"))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float32}
    assert stored.keys() == best.keys() and all(torch.equal(stored[k], best[k]) for k in best)
    assert load_model(shipped["path"]).metadata["test_metrics"]["n_frames"] == 3


def test_density_recipe_on_a_backbone_stage(tmp_path):
    require_reference(WATER_H5)
    from ase_phisnet.density.model import load_density_model

    backbone = {"name": "backbone", "note": "a tiny Hamiltonian model", "train": {"loss": {"fock": 1.0}, "max_steps": 2}}
    density = {"name": "density", "note": "density heads on it", "density": {"dataset": str(WATER_H5), "backbone": {"stage": "backbone"}, "auxbasis": "def2-universal-jfit", "ridge": [1.0e-8]}}
    path = write_recipe(tmp_path, "d", recipe={**MINI, "name": "mini-density", "stages": [backbone, density]}, ship={"frames": 2, "one_step": False, "keep_frames": 1})
    shipped = run_recipe(load_recipe(path), progress=False, log=lambda line: None)
    assert shipped["kind"] == "density" and shipped["report"]["n_frames"] == 2
    model = load_density_model(shipped["path"])  # checks the stored backbone against its record
    sha = json.loads((tmp_path / "d" / "backbone" / "best" / "config.json").read_text())["weights_sha256"]
    assert model.metadata["base_model"] == {"name": "mini-density/backbone", "weights_sha256": sha}
    assert [s["stage"] for s in model.metadata["training"]["stages"]] == ["backbone", "density"]
    assert len(model.metadata["test_report"]["per_frame"]["density_model_eps_rho_percent"]) == 1


def test_command_stages_run_once_and_a_failure_names_the_stage(tmp_path):
    from ase_phisnet.training.recipe import StageFailed

    write = ["python", "-c", "import sys; open(sys.argv[1], 'w').write('made')", "{output}"]
    stages = [{"name": "make", "command": write, "output": "made.txt"}, {"name": "fail", "command": ["python", "-c", "raise SystemExit(3)"]}, MINI["stages"][0]]
    recipe = load_recipe(write_recipe(tmp_path, "c", recipe={**MINI, "stages": stages}))
    lines = []
    run_recipe(recipe, until="make", log=lines.append)
    assert (tmp_path / "c" / "make" / "made.txt").read_text() == "made" and recipe.status(recipe.stage("make")).state == "done"
    with pytest.raises(StageFailed, match="stage 'fail': the command exited with status 3"):
        run_recipe(recipe, log=lines.append)
    assert "[1/3] make (command): done, skipped" in lines
    assert recipe.status(recipe.stage("fail")).text == "partial: runs again from the start"


def test_changed_settings_of_a_started_stage_are_refused(tmp_path):
    require_reference(WATER_H5)
    one = {**MINI, "stages": [{"name": "fock", "train": {"loss": {"fock": 1.0}, "max_steps": 2}}]}
    path = write_recipe(tmp_path, "r", recipe=one)
    run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)
    one["stages"][0]["train"]["max_steps"] = 4
    path = write_recipe(tmp_path, "r", recipe=one)
    with pytest.raises(ConfigError, match=r"stage 'fock' was started with other settings \(max_steps changed"):
        run_recipe(load_recipe(path), ship=False, progress=False, log=lambda line: None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stages": [{"name": "a", "train": {"init_from": {"stage": "nowhere"}, "loss": {"fock": 1.0}}}]}, r"stage 'a', train: init_from: \{stage: 'nowhere'\} names no earlier stage"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}, "learning_rate": 1}}]}, r"stage 'a', train: unknown key\(s\) \['learning_rate'\]; accepted: .*'optimizer'"),
        ({"stages": [{"name": "a", "trian": {"loss": {"fock": 1.0}}}]}, r"stage 'a': a stage has exactly one of \['train', 'density', 'command'\]"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}}, "stride": 2}]}, r"stage 'a': unknown key\(s\) \['stride'\]"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}, "optimizer": {"lr": 1e-3, "beta": 2}}}]}, r"stage 'a', train: optimizer: unknown key\(s\) \['beta'\]"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}}}, {"name": "a", "train": {"loss": {"fock": 1.0}}}]}, "two stages are called 'a'"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}, "output": "x"}}]}, r"stage 'a', train: \['output'\] is set by the recipe"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}}}], "ship": {"fit_atomic_energies": True}}, "fit_atomic_energies needs a model with an hcore head"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}}}], "ship": {"frames": 3}}, r"ship \(of the train stage 'a'\): unknown key\(s\) \['frames'\]"),
        ({"stages": [{"name": "a", "train": {"loss": {"fock": 1.0}}}], "shipping": {}}, r"unknown key\(s\) \['shipping'\]; accepted"),
        ({"stages": [{"name": "a", "command": ["python", "-c", "pass", "{output}"]}]}, "uses {output} but the stage gives no output"),
    ],
)
def test_bad_recipes_are_refused_naming_stage_and_key(tmp_path, change, message):
    path = write_recipe(tmp_path, "bad", recipe={**MINI, **change})
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def test_cli_refuses_single_run_options_for_a_recipe(tmp_path, capsys):
    path = write_recipe(tmp_path, "r")
    assert main(["train", str(path), "--max-steps", "3"]) == 2
    assert "--max-steps cannot be used here: a recipe sets these per stage" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["ethanol-pbe-def2svp", "water-fock-48x3", "water-pbe-48x3", "water-pbe-def2svp", "water-ccsdt-def2svp", "water-density-etb"])
def test_shipped_recipes_parse(name):
    from pathlib import Path

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "training" / "recipes" / f"{name}.yaml")
    assert recipe.ship_name == name
    for stage in recipe.stages:
        assert stage.note, f"stage {stage.name} has no note"
