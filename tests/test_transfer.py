"""HF -> CCSD(T) transfer learning: the comparison metrics, and the shipped fine-tuned model
against CCSD(T) on its held-out frames (references committed in tests/references/, made by
training/transfer_report.py; two of them recomputed here with PySCF)."""

from pathlib import Path

import numpy as np
import pytest

import ase_phisnet
from ase_phisnet.transfer import compare_to_reference, force_mae, plot_energy_parity, relative_energy_mae
from ase_phisnet.units import HARTREE

REFERENCES = Path(__file__).parent / "references" / "water_ccsdt_test.npz"
CARD = Path(__file__).resolve().parents[1] / "docs" / "models" / "water-ccsdt-def2svp.md"


def test_relative_energy_mae_ignores_a_constant_offset():
    rng = np.random.default_rng(0)
    ref = -76.3 + 0.01 * rng.standard_normal(50)
    assert relative_energy_mae(ref - 0.25, ref) == pytest.approx(0.0, abs=1e-12)
    noise = 1e-3 * rng.standard_normal(50)
    expected = np.abs(noise - noise.mean()).mean()
    assert relative_energy_mae(ref + 3.0 + noise, ref) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="equal-length"):
        relative_energy_mae(ref[:3], ref)


def test_force_mae_and_units():
    F = [np.zeros((3, 3)), np.zeros((2, 3))]
    G = [np.full((3, 3), 0.01), np.full((2, 3), -0.01)]
    assert force_mae(F, G) == pytest.approx(0.01)
    row = compare_to_reference([0.0, 0.002], F, [0.0, 0.0], G)
    assert row["relative_energy_mae_meV"] == pytest.approx(1e-3 * HARTREE * 1e3)
    assert row["forces_mae_meV_per_A"] == pytest.approx(0.01 * 51422.0670, rel=1e-4)  # Hartree/Bohr -> meV/Å


def test_energy_parity_figure(tmp_path):
    ref = np.linspace(-76.3, -76.2, 20)
    path = plot_energy_parity(tmp_path / "parity.png", ref, {"a": ref + 0.001 * np.sin(ref * 100), "b": ref})
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def held_out():
    return dict(np.load(REFERENCES))


@pytest.fixture(scope="module")
def fine_tuned():
    return ase_phisnet.load_model("water-ccsdt-def2svp")


def test_fine_tuned_model_halves_the_hf_error_against_ccsd_t(held_out, fine_tuned):
    """The issue's target on the 300 held-out frames: relative-energy and force MAE against
    CCSD(T) at most half of the Hartree-Fock method's own; and the figures recorded in the model."""
    from ase_phisnet.training.energy_forces import predict_energies_forces

    meta = fine_tuned.metadata
    assert meta["reference"]["method"] == "ccsd(t)"
    assert not set(held_out["indices"].tolist()) & set(meta["splits"]["train"])
    frames = [{"numbers": held_out["numbers"], "positions": p} for p in held_out["positions"]]
    E, F = predict_energies_forces(fine_tuned, frames, progress=False)
    model = compare_to_reference(E, F, held_out["energy_ccsd_t"], held_out["forces_ccsd_t"])
    hf = compare_to_reference(held_out["energy_hf"], held_out["forces_hf"], held_out["energy_ccsd_t"], held_out["forces_ccsd_t"])
    assert model["relative_energy_mae_meV"] <= 0.5 * hf["relative_energy_mae_meV"]
    assert model["forces_mae_meV_per_A"] <= 0.5 * hf["forces_mae_meV_per_A"]
    recorded = meta["transfer_report"]["rows"]
    for key in ("relative_energy_mae_meV", "forces_mae_meV_per_A"):
        assert model[key] == pytest.approx(recorded["(b) fine-tuned model (water-ccsdt-def2svp)"][key], rel=1e-5), key
        assert hf[key] == pytest.approx(recorded["(c) HF/def2-SVP method"][key], rel=1e-9), key
        assert f"{model[key]:.2f}" in CARD.read_text(), key  # the model card quotes the figures


def test_held_out_references_are_ccsd_t(held_out):
    """Two of the committed reference frames, relabelled with PySCF now."""
    from ase_phisnet.data import label_frame

    for k in (0, 150):
        frame = label_frame(held_out["numbers"], held_out["positions"][k], method="ccsd(t)")
        assert frame["energy"] == pytest.approx(held_out["energy_ccsd_t"][k], abs=1e-8)
        np.testing.assert_allclose(frame["forces"], held_out["forces_ccsd_t"][k], atol=1e-6)
        hf = label_frame(held_out["numbers"], held_out["positions"][k], method="rhf")
        assert hf["energy"] == pytest.approx(held_out["energy_hf"][k], abs=1e-8)
