"""The orbital convention, proven on PySCF's own matrices.

For a random rotation R, PySCF's S, H_core and converged Fock matrix at the rotated geometry
must equal D X D^T, with D the Wigner matrix of :class:`AOBasis`, after a round trip through the
model's irreps order. A deliberately broken convention must fail the same check.
"""

import numpy as np
import pytest
import torch
from e3nn import o3

from ase_phisnet.basis import AOBasis, BasisError, random_rotation, shell_wigner_blocks
from ase_phisnet.molecule import build_mol

from .conftest import ETHANOL_H5, WATER_H5, shared_frame


def pyscf_matrices(numbers, positions, rhf=False, dm0=None):
    """S, H_core and (optionally) the converged RHF Fock matrix and density, PySCF order.

    An orbital gradient below 1e-8 puts the Fock matrices within ~1e-10 of their limit, safely
    inside the 1e-8 check; tighter thresholds can stall at the noise floor of threaded runs.
    """
    from pyscf import scf

    mol = build_mol(numbers, positions, "def2-svp")
    out = {"S": mol.intor("int1e_ovlp"), "H": mol.intor("int1e_kin") + mol.intor("int1e_nuc")}
    if rhf:
        mf = scf.RHF(mol)
        mf.conv_tol, mf.conv_tol_grad, mf.max_cycle = 1e-12, 1e-8, 200
        mf.kernel(dm0=dm0)
        assert mf.converged
        out["P"] = mf.make_rdm1()
        out["F"] = mf.get_fock(dm=out["P"])
    return out


def equivariance_error(basis, numbers, positions, R, X, X_rot, wigner=None):
    """max |X(Rx) - D X(x) D^T|, both sides taken through the irreps order and back."""
    D = basis.wigner_d(R, numbers, order="irreps") if wigner is None else wigner
    X_irr = basis.to_irreps_order(X, numbers)
    predicted = basis.to_pyscf_order(D @ X_irr @ D.T, numbers)
    return np.abs(predicted - X_rot).max()


@pytest.mark.parametrize("h5, rhf", [(WATER_H5, True), (ETHANOL_H5, True)], ids=["water", "ethanol"])
def test_pyscf_matrices_rotate_with_wigner_d(h5, rhf):
    numbers, pos = shared_frame(h5, 7)
    basis = AOBasis("def2-svp", numbers)
    R = random_rotation(seed=11)
    center = pos.mean(0)
    pos_rot = (pos - center) @ R.T + center
    ref = pyscf_matrices(numbers, pos, rhf)
    # the rotated SCF starts from PySCF's default guess, not from the rotated density
    rot = pyscf_matrices(numbers, pos_rot, rhf)
    assert equivariance_error(basis, numbers, pos, R, ref["S"], rot["S"]) < 1e-10
    assert equivariance_error(basis, numbers, pos, R, ref["H"], rot["H"]) < 1e-10
    assert equivariance_error(basis, numbers, pos, R, ref["F"], rot["F"]) < 1e-8

    # The same check fails for the classic broken conventions.
    # (a) e3nn's raw (x, y, z) frame: Wigner blocks of R itself, not of P R P^T
    raw = [o3.Irrep(l, (-1) ** l).D_from_matrix(torch.from_numpy(R)).numpy() for l in range(3)]
    D_raw = _assemble(basis, numbers, raw)
    assert equivariance_error(basis, numbers, pos, R, ref["S"], rot["S"], wigner=D_raw) > 1e-3
    # (b) p shells left in PySCF's (x, y, z) order inside the irreps frame
    D_irr = basis.wigner_d(R, numbers, order="irreps")
    err_no_perm = np.abs(D_irr @ ref["S"] @ D_irr.T - rot["S"]).max()
    assert err_no_perm > 1e-3
    # (c) the transpose (inverse) rotation
    assert equivariance_error(basis, numbers, pos, R, ref["S"], rot["S"], wigner=basis.wigner_d(R.T, numbers, "irreps")) > 1e-3


def _assemble(basis, numbers, blocks):
    from scipy.linalg import block_diag

    return block_diag(*[blocks[l] for z in numbers for l in basis.shell_ls[int(z)]])


def test_ao_layout_matches_pyscf_labels():
    numbers, pos = shared_frame(ETHANOL_H5, 0)
    mol = build_mol(numbers, pos, "def2-svp")
    basis = AOBasis("def2-svp", numbers)
    assert basis.n_ao(numbers) == mol.nao
    labels = mol.ao_labels(fmt=False)
    for atom, sl in enumerate(basis.ao_slices(numbers)):
        assert {lab[0] for lab in labels[sl]} == {atom}
    # in irreps order every p shell reads (py, pz, px)
    p = basis.perm_to_irreps(numbers)
    components = [labels[i][3] if labels[i][2].endswith("p") else None for i in p]
    triples = [tuple(components[i : i + 3]) for i in range(len(p)) if components[i] == "y"]
    assert len(triples) == 2 * 3 + 6  # two p shells on each heavy atom, one on each H
    assert all(t == ("y", "z", "x") for t in triples)
    assert np.array_equal(p[basis.perm_to_pyscf(numbers)], np.arange(mol.nao))


def test_wigner_blocks_are_orthogonal_representations():
    R1, R2 = random_rotation(1), random_rotation(2)
    for l, (a, b, ab) in enumerate(zip(shell_wigner_blocks(R1, 4), shell_wigner_blocks(R2, 4), shell_wigner_blocks(R1 @ R2, 4))):
        assert np.allclose(a @ a.T, np.eye(2 * l + 1), atol=1e-12)
        assert np.allclose(a @ b, ab, atol=1e-12)
    # l = 1 in the standard (y, z, x) order is R itself, permuted
    assert np.allclose(shell_wigner_blocks(R1, 1)[1], R1[np.ix_([1, 2, 0], [1, 2, 0])], atol=1e-12)


def test_wigner_d_is_float64_exact_whatever_the_default_dtype():
    R = random_rotation(4)
    ref = AOBasis("def2-svp", [8]).wigner_d(R, [8])
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        again = AOBasis("def2-svp", [8]).wigner_d(R, [8])
    finally:
        torch.set_default_dtype(old)
    assert np.abs(again - ref).max() < 1e-13 and np.abs(ref @ ref.T - np.eye(14)).max() < 1e-13


def test_reordering_accepts_torch_and_batches():
    basis = AOBasis("def2-svp", [1, 8])
    numbers = [8, 1, 1]
    X = np.random.default_rng(0).normal(size=(2, 24, 24))
    back = basis.to_pyscf_order(basis.to_irreps_order(torch.from_numpy(X), numbers), numbers)
    assert torch.equal(back, torch.from_numpy(X))


def test_bad_basis_input_is_named():
    with pytest.raises(BasisError, match="sto-3g.*Z=118|no functions for element"):
        AOBasis("sto-3g", [1, 118])
    with pytest.raises(BasisError, match="not-a-basis"):
        AOBasis("not-a-basis", [1])
    basis = AOBasis("def2-svp", [1, 8])
    with pytest.raises(BasisError, match="element\\(s\\) C not covered.*H, O"):
        basis.n_ao([6, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="orthogonal"):
        basis.wigner_d(np.ones((3, 3)), [1])
