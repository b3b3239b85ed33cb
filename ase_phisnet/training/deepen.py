"""Deeper models from trained ones, predicting the same to start with.

An :class:`~ase_phisnet.model.interaction.Interaction` adds its update to the atom features, so
a module whose output layer is zero is the identity. :func:`deepen` appends such modules to a
trained model: the matrices stay what they were, and training (``init_from`` the deeper model)
grows the new output weights first and, through them, the rest of each new module. That asks
whether depth lowers the error of a model that has stopped improving at its size, without
training the deeper one from scratch.

Examples
--------
>>> import torch
>>> from ase_phisnet.model import PhiSNetConfig, build_model
>>> small = build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4))
>>> deeper = deepen(small, 3)
>>> deeper.config.num_interactions, float(deeper.interactions[2].out.weight.abs().max())
(3, 0.0)
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..model import PhiSNetConfig, build_model
from ..model.io import load_weights


def deepen(model, num_interactions: int):
    """A copy of ``model`` with ``num_interactions`` interaction modules; the added ones (after
    the trained ones) start as the identity. Same dtype and device as ``model``."""
    old = model.config.num_interactions
    if num_interactions <= old:
        raise InputError(f"the model has {old} interaction modules already; ask for more than that, got {num_interactions}")
    param = next(model.parameters())
    config = PhiSNetConfig.from_dict({**model.config.to_dict(), "num_interactions": num_interactions})
    deeper = build_model(config, param.dtype, param.device)
    load_weights(deeper, model.state_dict(), new=tuple(f"interactions.{i}." for i in range(old, num_interactions)))
    # every buffer (reference blocks, ...) carries over with the state dict; the new modules' output is zero
    with torch.no_grad():
        for i in range(old, num_interactions):
            deeper.interactions[i].out.weight.zero_()
    return deeper
