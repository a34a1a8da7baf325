"""Data-parallel training with ``torch.distributed`` (torchrun, or spawned processes).

Each optimiser step takes a global batch of B conformers; rank r of W ranks evaluates
the r-th of W near-equal contiguous slices of it. The loss of a rank is
sum_t w_t S_t^r / C_t with S_t^r its sum of residuals of term t and C_t the count of
that term over the *whole* global batch (all-reduced before the backward pass), so the
sum over ranks of the rank gradients, all-reduced after the backward pass, is exactly
the gradient of the single-process loss of the global batch. Backend: NCCL on GPUs,
gloo on CPUs. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from mlip import fields


@dataclass
class DistContext:
    """Rank, world size and the device of this process."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context initialised the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of a global batch (may be empty)."""
        if not self.enabled:
            return indices
        return np.array_split(indices, self.world_size)[self.rank]

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks (a no-op in a single process); returns the tensor."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Sum the gradients over ranks in one flat buffer (missing ones count as zero)."""
        if not self.enabled:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to all ranks."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True if ``flag`` is true on any rank (keeps stop decisions in step)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)


def resolve_device(name: str) -> torch.device:
    """:func:`mlip.fields.resolve_device` ("auto" -> cuda if available, else cpu), with
    this process's LOCAL_RANK GPU for a CUDA device without an index."""
    device = fields.resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def setup(device_name: str = "auto") -> DistContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else a 1-rank context."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(device_name)
    if dist.is_available() and dist.is_initialized():  # joined by the caller (e.g. a test)
        return DistContext(dist.get_rank(), dist.get_world_size(), device, False)
    if world <= 1:
        return DistContext(0, 1, device)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), device, owns)


def teardown(context: DistContext) -> None:
    """Leave the process group if ``context`` joined it. On success, call ``barrier()``
    first: a rank that leaves while another still talks to it can abort gloo."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()
