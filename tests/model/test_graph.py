"""The graph's block layout: every AO matrix entry placed exactly once, per molecule."""

import numpy as np
import torch

from ase_phisnet.basis import AOBasis
from ase_phisnet.model.graph import build_graph


def test_block_layout_covers_each_matrix_entry_once():
    basis = AOBasis("def2-svp", [1, 8])
    water = ([8, 1, 1], torch.tensor([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]], dtype=torch.float64))
    h2 = ([1, 1], torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.4]], dtype=torch.float64))
    graph = build_graph(basis, [water[0], h2[0]], [water[1], h2[1]], cutoff=15.0)
    n = graph.max_ao  # 24, the water molecule; H2 has 10 AOs, padded
    layout = graph.block_layout(basis)
    assert graph.block_layout(basis) is layout  # computed once per graph
    index = torch.cat([b.index.reshape(-1) for b in layout]).numpy()
    assert len(index) == len(np.unique(index))
    counts = np.bincount(index, minlength=2 * n * n).reshape(2, n, n)
    assert counts[0].sum() == 24 * 24 and counts[0].min() == 1
    assert counts[1, :10, :10].min() == 1 and counts[1].sum() == 10 * 10  # padding untouched
    one_centre = [b for b in layout if b.one_centre]
    assert sorted((b.zi, len(b.rows)) for b in one_centre) == [(1, 4), (8, 1)]
