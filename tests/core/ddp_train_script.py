"""Launched by tests/core/test_train.py under torchrun: train the LM for a few steps with DDP
(gloo) and save rank 0's parameters to argv[1]."""

import sys

import torch

from shiyan.core.train import TrainConfig, train

sys.path.insert(0, sys.argv[2])
from train_fixtures import batches, lm_loss, tiny_lm  # noqa: E402

if __name__ == "__main__":
    torch.distributed.init_process_group("gloo")
    model = tiny_lm()
    train(model, batches, lm_loss, TrainConfig(steps=3, warmup_steps=1, eval_every=0, lr=1e-2))
    if torch.distributed.get_rank() == 0:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, sys.argv[1])
    # Both ranks leave together: a rank that tears gloo down while its peer is still busy can abort
    # in gloo's worker threads ("terminate called without an active exception", seen once in CI).
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
