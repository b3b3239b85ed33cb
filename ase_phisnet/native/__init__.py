"""The native engine: the PhiSNet network forward and its positions gradient in compiled C++.

A calculator step is small (a few atoms, a few dozen pairs), so in PyTorch its time goes to
dispatching thousands of small operations. :class:`NativePhiSNet` runs the same network, with the
model's weights, in two calls into ``phisnet.cpp`` (built when the package is installed): the
matrices, then ``dE/dR`` from ``dE/dmatrices``. It returns what ``model(graph)`` returns and
differentiates with respect to the positions only, once: forces at inference. Training, which
needs the weights' gradients and the forces' own derivative, stays on the torch model.

Examples
--------
>>> import torch
>>> from ase_phisnet.model import PhiSNetConfig, build_model
>>> model = build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4))
>>> graph = model.graph([[8, 1, 1]], [[[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]]])
>>> native = NativePhiSNet(model)
>>> bool(torch.allclose(native(graph)["fock"], model(graph)["fock"], rtol=0, atol=1e-12))
True
"""

from .engine import NativePhiSNet, NativeUnavailable, native_available

__all__ = ["NativePhiSNet", "NativeUnavailable", "native_available"]
