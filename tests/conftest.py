"""Shared fixtures: the reference data sets, float64 torch, the ``fast`` subset.

The reference-data folder comes from :func:`ase_phisnet.data.location.reference_data_dir`
(``$PHISNET_DATA``, else ``../shared/data`` beside the checkout). A test that needs a set calls
:func:`require_reference`: a missing set skips the test on a developer's machine and fails the
run under CI (environment ``CI=true``), so the data tests never pass by skipping there.
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ase_phisnet.data.location import ENV_VAR, reference_data_dir

SHARED_DATA = reference_data_dir(must_exist=False)
MODEL_CARD_GENERATOR = Path(__file__).resolve().parents[1] / "docs" / "make_model_cards.py"
WATER_H5 = SHARED_DATA / "water_pbe_def2svp_500K.h5"
ETHANOL_H5 = SHARED_DATA / "ethanol_pbe_def2svp_500K.h5"


def in_ci() -> bool:
    """Whether the run is CI's (environment ``CI`` set to true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def require_reference(path, *, strict=None) -> Path:
    """``path`` if the reference file or folder exists; otherwise skip the test, or fail it.

    Parameters
    ----------
    path : path-like
        A reference set (usually under :data:`SHARED_DATA`).
    strict : bool, optional
        Fail instead of skipping; default: under CI (:func:`in_ci`).
    """
    path = Path(path)
    if path.exists():
        return path
    message = (
        f"shared reference data missing: {path} (reference-data folder: ${ENV_VAR}, "
        f"else ../shared/data beside the checkout; resolved here to {SHARED_DATA})"
    )
    if in_ci() if strict is None else strict:
        pytest.fail(message)
    pytest.skip(message)


def load_card_generator():
    """``docs/make_model_cards.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_model_cards", MODEL_CARD_GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """The reference-data folder (skips, or fails under CI, when it is missing)."""
    return require_reference(SHARED_DATA)


#: The ``fast`` subset (``pytest -m fast``): the quickest meaningful tests of each area, under
#: 3 minutes on 2 cores. Entries are paths relative to ``tests/``: a module (all its tests), a
#: test (all its parametrizations) or one parametrized case. Modules can also mark themselves
#: (``pytestmark = pytest.mark.fast``, as test_frozen_numbers.py, equivariant/test_e3nn_parity.py and
#: electronic/test_state.py do). tests/test_fast_list.py checks that every entry still names a test.
FAST_TESTS = (
    # basis: AO layout, Wigner D, PySCF matrices rotating with it
    "test_basis.py",
    # equivariant: the e3nn replacements against e3nn, and their equivariance
    "equivariant/test_harmonics.py",
    "equivariant/test_gate.py",
    "equivariant/test_linear.py",
    "equivariant/test_tensor_product.py::test_equivariant_under_rotation",
    "equivariant/test_tensor_product.py::test_path_sum_keeps_only_the_clebsch_gordan_non_zeros",
    "equivariant/test_tensor_product.py::test_second_derivatives_of_both_products",
    # model: graph, radial basis, equivariance and invariances of the predicted matrices, model files
    "model/test_graph.py",
    "model/test_radial.py",
    "model/test_phisnet.py::test_matrices_rotate_with_wigner_d",
    "model/test_phisnet.py::test_a_wrong_frame_breaks_the_check",
    "model/test_phisnet.py::test_translation_invariance",
    "model/test_phisnet.py::test_permuting_identical_atoms_permutes_blocks",
    "model/test_phisnet.py::test_batched_equals_single",
    "model/test_io.py::test_missing_model",
    "model/test_io.py::test_damaged_config_is_refused",
    # electronic: eigensolver and its derivatives, exact integrals, grids, properties vs PySCF
    "electronic/test_eigensolver.py",
    "electronic/test_grid.py",
    "electronic/test_properties.py",
    "electronic/test_analytic.py",
    "electronic/test_energy_forces.py::test_exact_overlap_and_its_derivative",
    "electronic/test_energy_forces.py::test_nuclear_repulsion_matches_pyscf",
    "electronic/test_energy_forces.py::test_exact_core_hamiltonian_and_its_derivative",
    # calculator: units and conventions, forces = -dE/dR, invariance, PySCF hand-off, refusals
    "test_calculator.py::test_results_units_and_conventions",
    "test_calculator.py::test_forces_are_minus_the_energy_gradient",
    "test_calculator.py::test_energy_is_invariant_and_forces_rotate_with_the_molecule",
    "test_calculator.py::test_pyscf_hand_off",
    "test_calculator.py::test_bad_input_is_refused_with_reasons",
    # native engine: equal to the torch model, and what the calculator runs
    "test_native.py",
    # data: store, splits, sampling, import, labelling one frame, CLI input checks, data location
    "data/test_store.py::test_write_read_reopen",
    "data/test_store.py::test_bulk_write",
    "data/test_store.py::test_validation_and_no_duplicates",
    "data/test_store.py::test_metadata_mismatch_refused",
    "data/test_store.py::test_not_a_dataset",
    "data/test_store.py::test_stray_tmp_ignored_then_cleaned",
    "data/test_store.py::test_one_writer_at_a_time",
    "data/test_store.py::test_arrays_and_converged_mask",
    "data/test_store.py::test_merge_shards",
    "data/test_splits.py",
    "data/test_sample.py",
    "data/test_location.py",
    "data/test_import.py::test_import_bad_layouts",
    "data/test_label.py::test_label_frame_matches_pyscf_and_shared_set",
    "data/test_label.py::test_label_frame_rhf",
    "data/test_label.py::test_open_shell_refused",
    "data/test_cli_data.py::test_subcommand_help",
    "data/test_cli_data.py::test_label_bad_input",
    "data/test_cli_data.py::test_sample_bad_input",
    "data/test_cli_data.py::test_info_merge_bad_input",
    # training: loss targets and terms, config checks (every training run takes > 15 s)
    "training/test_energy_forces.py::test_effective_core_target_reproduces_the_pbe_energy",
    "training/test_recipe.py::test_bad_recipes_are_refused_naming_stage_and_key",
    "training/test_recipe.py::test_cli_refuses_single_run_options_for_a_recipe",
    "training/test_recipe.py::test_shipped_recipes_parse",
    "training/test_recipe.py::test_command_stages_run_once_and_a_failure_names_the_stage",
    "model/test_splits_file.py::test_lists_go_to_splits_json_and_come_back",
    "model/test_splits_file.py::test_inline_lists_still_load",
    "model/test_splits_file.py::test_damaged_or_missing_splits_file_is_refused",
    "training/test_energy_forces.py::test_effective_core_target_is_the_stored_hcore_for_hartree_fock",
    "training/test_energy_forces.py::test_energy_force_terms_reuse_one_exact_overlap_per_molecule",
    "training/test_energy_forces.py::test_energy_force_terms_need_both_heads",
    "training/test_energy_forces.py::test_offset_free_errors_ignore_a_constant_per_element",
    "training/test_energy_forces.py::test_orbital_energy_term_is_the_evaluated_eps_error",
    "training/test_trainer.py::test_bad_training_config_is_named",
    "training/test_trainer.py::test_metrics_csv_widens_when_a_resumed_run_reports_more",
    "test_learning_curves.py",
    # the repository itself
    "test_no_machine_paths.py",
    "test_fast_list.py",
)


def _fast_entry_matches(entry: str, relid: str) -> bool:
    """Whether a :data:`FAST_TESTS` entry names the test with node id ``relid`` (relative to tests/)."""
    return relid == entry or relid.split("[", 1)[0] == entry or relid.startswith(entry + "::")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`FAST_TESTS` ``fast``."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.path)).resolve()
        if tests_dir not in path.parents:
            continue
        relid = "::".join([path.relative_to(tests_dir).as_posix(), *item.nodeid.split("::")[1:]])
        if any(_fast_entry_matches(entry, relid) for entry in FAST_TESTS):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(autouse=True)
def _float64():
    """Physics checks run in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def shared_frame(h5path, index=0):
    """(numbers, positions in Å) of one frame of a shared reference set."""
    import h5py

    with h5py.File(require_reference(h5path, strict=True), "r") as h5:
        return np.asarray(h5["numbers"]), np.asarray(h5["positions"][index])


def random_energy_model(reference_h5, elements=(1, 8), features=4):
    """A model with F~ and H~core heads (H~core on top of the exact T + V_nuc): random weights
    scaled down on top of diagonal blocks fitted to the data, so its spectrum looks physical
    (a HOMO-LUMO gap). Float64, for physics checks."""
    from ase_phisnet.model import PhiSNetConfig, build_model
    from ase_phisnet.training.data import MatrixData, load_frames

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(PhiSNetConfig.from_preset("small", elements=list(elements), features=features, heads=["fock", "hcore"], core_baseline=True), torch.float64)
    frames, _ = load_frames(reference_h5)
    data = MatrixData(frames[:10], model.basis, ["fock", "hcore"], core_baseline=True)
    for head, refs in data.diagonal_references(range(10)).items():
        for z, block in refs.items():
            model.heads[head].set_reference(z, torch.as_tensor(block))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "heads" in name and "linear" in name:
                p.mul_(0.05)
    model.metadata = {"reference": {"method": "rks", "xc": "pbe", "charge": 0}}
    return model.eval()
