"""Energy/force training: the H~core target, the E/F loss, and a run that switches them on."""

import csv

import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from pyscf import scf

from ase_phisnet import load_model
from ase_phisnet.electronic import nuclear_repulsion
from ase_phisnet.evaluation import orbital_metrics
from ase_phisnet.molecule import build_mol
from ase_phisnet.training import TrainConfig, Trainer
from ase_phisnet.training.data import MatrixData, load_frames
from ase_phisnet.training.energy_forces import EnergyForceTerms, effective_core_target, energy_force_loss
from ase_phisnet.units import BOHR, HARTREE

from ..conftest import WATER_H5
from .test_trainer import TINY


def energy_expression(frame, H):
    F, S = frame["fock"], frame["overlap"]
    n_occ = int(np.sum(frame["numbers"])) // 2
    C = scipy.linalg.eigh(F, S)[1][:, :n_occ]
    P = 2 * C @ C.T
    E_nn = float(nuclear_repulsion(torch.as_tensor(frame["numbers"]), torch.as_tensor(frame["positions"] / BOHR)))
    return E_nn + 0.5 * np.sum(P * (F + H))


def test_effective_core_target_reproduces_the_pbe_energy():
    frames, _ = load_frames(WATER_H5)
    for frame in frames[:3]:
        H = effective_core_target(frame)
        assert abs(energy_expression(frame, H) - frame["energy"]) < 1e-10
        # for PBE the stored hcore misses E_xc - 1/2 tr[P V_xc]: far more than a meV
        assert abs(energy_expression(frame, frame["hcore"]) - frame["energy"]) > 1.0


def test_effective_core_target_is_the_stored_hcore_for_hartree_fock():
    numbers = np.array([8, 1, 1])
    positions = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.77, -0.46]])
    mf = scf.RHF(build_mol(numbers, positions))
    mf.conv_tol = 1e-12
    energy = mf.kernel()
    frame = dict(numbers=numbers, positions=positions, fock=mf.get_fock(), hcore=mf.get_hcore(), overlap=mf.get_ovlp(), energy=energy)
    assert np.abs(effective_core_target(frame) - frame["hcore"]).max() < 1e-8


def test_energy_force_terms_reuse_one_exact_overlap_per_molecule():
    frames, _ = load_frames(WATER_H5)
    frame = frames[7]
    terms = EnergyForceTerms("def2-svp")
    integrals = terms.cache(frame["numbers"])
    R = torch.tensor(frame["positions"] / BOHR)
    S = integrals.overlap(R).numpy()
    assert np.abs(S - frame["overlap"]).max() < 1e-8  # positions are stored in Å to double precision
    assert terms.cache(frame["numbers"]) is integrals  # the Mole is built once per molecule


def test_a_run_switches_on_energy_and_force_terms(tmp_path):
    first_cfg = {**TINY, "output": str(tmp_path / "fock"), "max_steps": 3, "val_every": 3}
    (tmp_path / "fock.yaml").write_text(yaml.safe_dump(first_cfg))
    Trainer(TrainConfig.from_yaml(tmp_path / "fock.yaml"), progress=False).fit()

    cfg = {
        **TINY,
        "output": str(tmp_path / "ef"),
        "init_from": str(tmp_path / "fock" / "best"),
        "loss": {"fock": 1.0, "hcore": 1.0, "energy": 1.0, "forces": 1.0},
        "trainable": ["heads.hcore"],
        "trainable_until": 2,
        "energy_forces_from": 5,
        "max_steps": 8,
        "val_every": 4,
    }
    (tmp_path / "ef.yaml").write_text(yaml.safe_dump(cfg))
    trainer = Trainer(TrainConfig.from_yaml(tmp_path / "ef.yaml"), progress=False)
    assert trainer.model.config.heads == ["fock", "hcore"]
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.config.max_steps = 2
    trainer.fit()  # the loaded weights stay fixed while the new head warms up
    warm = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert all(torch.equal(start[k], warm[k]) for k in start if not k.startswith("heads.hcore."))
    assert any(not torch.equal(start[k], warm[k]) for k in start if k.startswith("heads.hcore."))
    trainer.config.max_steps = 8
    trainer.fit()
    rows = list(csv.DictReader(open(tmp_path / "ef" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 8]  # fit() validates where it stops
    rows = rows[1:]
    for row in rows:
        assert np.isfinite(float(row["val_energy_mae_meV"])) and np.isfinite(float(row["val_forces_mae_meV_per_A"]))
    # the loss at step 8 includes the E/F terms, at step 4 it did not
    assert float(rows[1]["val_loss"]) > float(rows[0]["val_loss"])
    trained = trainer.model.state_dict()
    assert any(not torch.equal(warm[k], trained[k]) for k in start if k.startswith("interactions."))
    model = load_model(tmp_path / "ef" / "best")
    assert model.config.heads == ["fock", "hcore"]


def test_an_added_energy_correction_starts_at_zero_and_learns(tmp_path):
    """init_from a model without the correction: the same energies at first (the readout's output
    layer is zero), then the energy and force terms train it; the evaluation reports the
    Hamiltonian-only errors beside the total."""
    from ase_phisnet.evaluation import energy_force_metrics

    base = {**TINY, "model": {**TINY["model"], "heads": ["fock", "hcore"], "core_baseline": True}, "loss": {"fock": 1.0, "hcore": 1.0}}
    (tmp_path / "start.yaml").write_text(yaml.safe_dump({**base, "output": str(tmp_path / "start"), "max_steps": 2, "val_every": 2}))
    Trainer(TrainConfig.from_yaml(tmp_path / "start.yaml"), progress=False).fit()
    start = load_model(tmp_path / "start" / "best")
    cfg = {
        **base,
        "model": {**base["model"], "energy_correction": True},
        "output": str(tmp_path / "corrected"),
        "init_from": str(tmp_path / "start" / "best"),
        "loss": {"fock": 1.0, "hcore": 1.0, "energy": 1.0, "forces": 1.0},
        "trainable": ["energy_correction"],
        "max_steps": 3,
        "val_every": 3,
    }
    (tmp_path / "corrected.yaml").write_text(yaml.safe_dump(cfg))
    trainer = Trainer(TrainConfig.from_yaml(tmp_path / "corrected.yaml"), progress=False)
    readout, data = trainer.model.energy_correction, trainer.sets["train"]
    with torch.no_grad():  # the readout's inputs are normalised on the training frames
        x, _, _ = trainer.model.atom_features(trainer.model.graph(data.numbers, data.positions))
        q = (readout.invariants(x) - readout.mean) / readout.std
    assert q.mean(0).abs().max() < 1e-4 and (q.std(0) - 1).abs().max() < 1e-3
    frames, _ = load_frames(WATER_H5)
    before = energy_force_metrics(start, frames[:4], progress=False)
    at_start = energy_force_metrics(trainer.model.double(), frames[:4], progress=False)
    trainer.model.float()
    assert at_start["energy_mae_meV"] == pytest.approx(before["energy_mae_meV"], rel=1e-6)  # float32 weights
    assert at_start["hamiltonian_energy_mae_meV"] == pytest.approx(at_start["energy_mae_meV"], abs=1e-9)
    readout = {k: v.clone() for k, v in trainer.model.state_dict().items() if k.startswith("energy_correction.")}
    trainer.fit()
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in readout.items())
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in start.state_dict().items() if k.startswith("interactions."))
    trained = load_model(tmp_path / "corrected" / "best")
    assert trained.config.energy_correction
    after = energy_force_metrics(trained, frames[:4], progress=False)
    assert after["energy_mae_meV"] != pytest.approx(after["hamiltonian_energy_mae_meV"], abs=1e-6)
    assert after["hamiltonian_energy_mae_meV"] == pytest.approx(before["energy_mae_meV"], rel=1e-6)  # only the readout trained


def test_energy_force_terms_need_both_heads(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "o"), "loss": {"fock": 1.0, "energy": 1.0}}))
    with pytest.raises(ValueError, match="'fock' and 'hcore'"):
        TrainConfig.from_yaml(path)
    path.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "o"), "loss": {"fock": 1.0, "dipole": 1.0}}))
    with pytest.raises(ValueError, match="unknown loss term"):
        TrainConfig.from_yaml(path)


def test_orbital_energy_term_is_the_evaluated_eps_error():
    """The training term's occupied orbital energies (exact S(R), float64) give the same error
    as ``phisnet evaluate``'s eps metric (scipy, reference S) on the shipped model."""
    frames, _ = load_frames(WATER_H5)
    frames = frames[:4]
    model = load_model("water-pbe-def2svp")
    data = MatrixData(frames, model.basis)
    terms = EnergyForceTerms(model.config.basis)
    E, F, out, occupied = terms(model, data.numbers, data.positions, create_graph=False, return_orbital_energies=True)
    _, parts = energy_force_loss(E, F, data.energies, data.forces, {"orbital_energies": 1.0}, occupied, data.occupied_eps)
    expected = []
    for b, (frame, z) in enumerate(zip(frames, data.numbers)):
        n = model.basis.n_ao(z)
        F_pred = model.basis.to_pyscf_order(out["fock"][b, :n, :n], z).detach().double().numpy()
        expected.append(orbital_metrics(F_pred, frame["fock"], frame["overlap"], 5)["eps_abs_err"])
    assert abs(float(parts["orbital_energies_mae"]) - np.concatenate(expected).mean()) < 1e-9
    assert float(parts["orbital_energies_mae"]) > 1e-6  # a trained model, not the reference


def test_orbital_energy_loss_and_warmup_in_a_run(tmp_path):
    cfg = {
        **TINY,
        "output": str(tmp_path / "eps"),
        "loss": {"fock": 1.0, "hcore": 1.0, "forces": 1.0, "orbital_energies": 10.0},
        "model": {**TINY["model"], "heads": ["fock", "hcore"]},
        "optimizer": {"lr": 1e-3, "warmup_steps": 4},
        "max_steps": 2,
        "val_every": 1,
    }
    (tmp_path / "eps.yaml").write_text(yaml.safe_dump(cfg))
    Trainer(TrainConfig.from_yaml(tmp_path / "eps.yaml"), progress=False).fit()
    rows = list(csv.DictReader(open(tmp_path / "eps" / "metrics.csv")))
    assert [float(r["lr"]) for r in rows] == pytest.approx([2.5e-4, 5e-4])  # linear ramp to 1e-3
    assert all(float(r["val_eps_mae_uEh"]) > 0 for r in rows)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**cfg, "optimizer": {"warmup_steps": -1}}))
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")


def test_fitted_atomic_energies_remove_the_mean_residual_and_move_no_force(tmp_path):
    from ase_phisnet.training.energy_forces import fit_atomic_energies, predict_energies_forces

    frames, _ = load_frames(WATER_H5)
    fit, check = frames[:6], frames[6:8]
    model = load_model("water-pbe-def2svp")
    E0, F0 = predict_energies_forces(model, check, progress=False)
    before = dict(model.config.atomic_energies or {})  # the shipped model has fitted ones already
    table = fit_atomic_energies(model, fit)
    assert set(table) == {1, 8}
    added = {z: table[z] - before.get(z, 0.0) for z in table}
    E_fit, _ = predict_energies_forces(model, fit, progress=False)
    assert abs(np.mean([f["energy"] for f in fit] - E_fit)) < 1e-10  # mean residual gone
    E1, F1 = predict_energies_forces(model, check, progress=False)
    assert np.allclose(E1 - E0, 2 * added[1] + added[8], atol=1e-12)  # a constant per composition
    assert all(np.array_equal(a, b) for a, b in zip(F0, F1))
    # the calculator adds them too, and the constants survive a save and load
    from ase import Atoms

    from ase_phisnet import PhiSNetCalculator
    from ase_phisnet.model.io import save_model

    save_model(model, tmp_path / "m", metadata=model.metadata)
    atoms = Atoms(numbers=check[0]["numbers"], positions=check[0]["positions"])
    atoms.calc = PhiSNetCalculator(str(tmp_path / "m"))
    assert abs(atoms.get_potential_energy() / HARTREE - E1[0]) < 1e-9
    from ase_phisnet.model import PhiSNetConfig

    with pytest.raises(ValueError, match="atomic_energies for element"):
        PhiSNetConfig(elements=[1, 8], atomic_energies={"6": -37.8})


def test_offset_free_errors_ignore_a_constant_per_element():
    from ase_phisnet.training.energy_forces import element_counts, offset_free

    rng = np.random.default_rng(0)
    numbers = [[1, 1, 8], [1, 1, 8], [1, 1, 6, 8], [6, 6, 1, 1, 1, 1, 8], [8, 8]]
    counts = element_counts(numbers, (1, 6, 8))
    assert counts.tolist()[2] == [2, 1, 1]
    errors = rng.normal(size=len(numbers))
    shifted = errors + counts @ np.array([0.3, -1.2, 2.0])
    assert np.allclose(offset_free(shifted, counts), offset_free(errors, counts), atol=1e-12)
    assert not np.allclose(offset_free(errors, counts), errors)  # something was taken out
    # one molecule type: the mean is what goes
    same = element_counts([[1, 1, 8]] * 4, (1, 8))
    assert np.allclose(offset_free(np.array([1.0, 2.0, 3.0, 6.0]), same), [-2.0, -1.0, 0.0, 3.0])


@pytest.mark.parametrize("mode", ["absolute", "offset_free"])
def test_offset_free_validation_does_not_see_atomic_energies(tmp_path, mode):
    cfg = {
        **TINY,
        "output": str(tmp_path / mode),
        "loss": {"fock": 1.0, "hcore": 1.0, "energy": 10.0, "forces": 1.0},
        "model": {**TINY["model"], "heads": ["fock", "hcore"], "core_baseline": True},
        "max_steps": 1,
        "validation_energy": mode,
    }
    (tmp_path / f"{mode}.yaml").write_text(yaml.safe_dump(cfg))
    trainer = Trainer(TrainConfig.from_yaml(tmp_path / f"{mode}.yaml"), progress=False)
    model = trainer.ema
    before = trainer.validate(model)
    model.config.atomic_energies = {1: 1e-3, 8: 3e-3}  # 5 mEh per water molecule
    after = trainer.validate(model)
    assert after["val_energy_offset_meV"] - before["val_energy_offset_meV"] == pytest.approx(5e-3 * HARTREE * 1e3, rel=1e-9)
    assert after["val_forces_mae_meV_per_A"] == pytest.approx(before["val_forces_mae_meV_per_A"], rel=1e-12)
    if mode == "offset_free":
        assert after["val_loss"] == pytest.approx(before["val_loss"], rel=1e-9)
        assert after["val_energy_offset_free_mae_meV"] == pytest.approx(before["val_energy_offset_free_mae_meV"], rel=1e-6)
    else:
        assert abs(after["val_loss"] - before["val_loss"]) > 1e-2  # the 5 mEh shift is scored
    with pytest.raises(ValueError, match="validation_energy"):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**cfg, "validation_energy": "centered"}))
        TrainConfig.from_yaml(tmp_path / "bad.yaml")
