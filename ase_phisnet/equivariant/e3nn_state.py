"""Loading files written while a module here was still e3nn's.

:class:`.tensor_product.HarmonicTensorProduct`, :class:`.tensor_product.ChannelwiseTensorProduct`
and :class:`.linear.EquivariantLinear` compute what e3nn's ``o3.TensorProduct`` and
``o3.Linear`` computed, with the same weights. e3nn's
modules also kept constants in their state (Wigner-3j blocks, output masks, empty weight or
bias placeholders); model files written before the replacement hold them. The replacements
rebuild those constants, so the entries are dropped on load.
"""

from __future__ import annotations

from torch import nn


class E3nnStateOnLoad(nn.Module):
    """Base of a module that replaces an e3nn module; ``_is_e3nn_state(name)`` names the entries
    of the e3nn module's state dict that this one rebuilds."""

    def _is_e3nn_state(self, name: str) -> bool:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix) and self._is_e3nn_state(k[len(prefix) :])]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

