"""Data-parallel training over processes started by ``torchrun``.

``torchrun --nproc_per_node N -m ase_phisnet.cli.main train CONFIG.yaml`` runs the same
``phisnet train`` in N processes (gloo on the CPU, NCCL on CUDA, one GPU per process). Every
process builds the same model from the same seed and draws the same global batches; process
``r`` evaluates the molecules ``r, r + N, ...`` of each batch. Each loss term is a mean over the
whole batch (matrix elements, molecules, force components, orbital energies): the processes sum
their counts first, each divides its own sums by the global counts, and the gradients are summed
over the processes after the backward pass. The update is then the one a single process makes
on the whole batch (``tests/training/test_distributed.py``: the same weights to 1e-8).

This is DistributedDataParallel's algorithm (identical replicas, gradients summed after
``backward``) written out, without the ``DistributedDataParallel`` wrapper: the wrapper needs the
model called through its own ``forward`` and works with ``backward()`` only, while the force
loss differentiates the energy with ``torch.autograd.grad`` before the backward.

Only process 0 writes the run folder (checkpoints, ``best/``, ``metrics.csv``) and shows the
progress bar. Validation runs whole in every process, so all take the same scheduler and
best-model decisions.
"""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError


class Processes:
    """The processes of a run: ``rank``, ``world`` (1 without ``torchrun``) and collectives."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device) -> tuple[Processes, torch.device]:
        """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), else one
        process. Returns the processes and the device this one trains on."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(), device
        import torch.distributed as dist

        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            if torch.cuda.device_count() <= local:
                raise ConfigError(f"process {rank} needs GPU {local}, but torch sees {torch.cuda.device_count()}; start at most one process per GPU")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world), device

    def shard(self, indices: list[int]) -> list[int]:
        """This process's molecules of a global batch."""
        if len(indices) < self.world:
            raise ConfigError(f"a batch of {len(indices)} molecules cannot be shared by {self.world} processes: raise batch_size")
        return indices[self.rank :: self.world]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place (itself with one process)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, parameters) -> None:
        """Sum the gradients of ``parameters`` over the processes (one flat message)."""
        if self.world == 1:
            return
        params = [p for p in parameters if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        # one flag per parameter: a weight that no process differentiated keeps grad None, as
        # in one process (the optimizer then leaves it alone)
        has_grad = torch.tensor([float(p.grad is not None) for p in params], dtype=grads[0].dtype, device=grads[0].device)
        flat = self.sum(torch.cat([g.reshape(-1) for g in grads] + [has_grad]))
        offset = 0
        for k, (p, g) in enumerate(zip(params, grads)):
            p.grad = flat[offset : offset + g.numel()].view_as(g).clone() if flat[-len(params) + k] > 0 else None
            offset += g.numel()

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true in any process (so that all stop together)."""
        if self.world == 1:
            return flag
        return bool(self.sum(torch.tensor([float(flag)], device=device)).item() > 0)

    def check_same_parameters(self, model) -> None:
        """Refuse to start when the processes' initial weights differ (different seeds, files or code)."""
        if self.world == 1:
            return
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            checksum = torch.stack([flat.sum(), (flat * torch.arange(1, flat.numel() + 1, dtype=flat.dtype, device=flat.device)).sum()])
            mine = checksum.clone()
            total = self.sum(checksum)
        if not torch.allclose(total, mine * self.world, rtol=1e-12, atol=0):
            raise ConfigError(f"process {self.rank} starts from other weights than the others: every process must run the same config and code")
