"""Data-parallel training (2 gloo processes on CPU) equals one process with the same global batch.

The global batch of 5 conformers is split 3 + 2 over the ranks; energies, forces,
stress and Hessian probes all enter the loss. float64 throughout; the only difference
allowed is the order of floating-point sums in the gradient all-reduce.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from support import ELEMENTS, PairModel, make_h5

from mlip.train.config import load_config
from mlip.train.trainer import Trainer


def make_config(h5, out):
    return load_config(
        None,
        {
            "data.paths": [h5],
            "data.groups": None,
            "data.train_size": 20,
            "data.valid_size": 7,
            "data.batch_size": 5,
            "data.valid_batch_size": 4,
            "loss.hessian_weight": 10.0,
            "optim.lr": 0.02,
            "train.out": str(out),
            "train.max_epochs": 2,
            "train.progress": False,
            "train.evaluate": False,
            "train.device": "cpu",
            "train.dtype": "float64",
        },
    )


def train(h5, out):
    """Train; returns per-step losses, final weights, the last metrics row."""
    rows = []
    trainer = Trainer(
        make_config(h5, out), model=PairModel(ELEMENTS), callbacks=[lambda t, row: rows.append(row)]
    )
    losses = []
    step = trainer.train_step
    trainer.train_step = lambda indices: losses.append(step(indices)) or losses[-1]
    trainer.fit()
    return {"losses": losses, "weights": trainer.model.weights.detach().clone(), "row": rows[-1]}


def _worker(rank: int, world: int, rendezvous: str, h5: str, out: str, result: str) -> None:
    torch.set_num_threads(1)
    # a file rendezvous: no TCP port that another process on the machine could take
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        outcome = train(h5, out)
        if rank == 0:
            torch.save(outcome, result)
        dist.barrier()  # no rank leaves while another still talks to it
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_gloo_ranks_equal_one_process(tmp_path):
    h5 = make_h5(str(tmp_path / "d.h5"), n_mol=24, n_cryst=8)
    single = train(h5, tmp_path / "single")
    result = str(tmp_path / "ddp.pt")
    rendezvous = str(tmp_path / "rendezvous")
    mp.spawn(_worker, args=(2, rendezvous, h5, str(tmp_path / "ddp"), result), nprocs=2)
    ddp = torch.load(result, weights_only=False)

    assert len(ddp["losses"]) == len(single["losses"]) == 8
    assert ddp["losses"] == pytest.approx(single["losses"], rel=1e-12)
    assert torch.allclose(ddp["weights"], single["weights"], rtol=1e-10, atol=1e-13)
    assert not torch.allclose(single["weights"], PairModel(ELEMENTS).weights.double())
    for key in ("valid_loss", "valid_forces_mae", "valid_hvp_mae", "valid_stress_mae"):
        assert ddp["row"][key] == pytest.approx(single["row"][key], rel=1e-10)
    assert sorted(os.listdir(tmp_path / "ddp")) == sorted(os.listdir(tmp_path / "single"))
