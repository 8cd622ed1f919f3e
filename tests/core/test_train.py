from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shiyan.core.train import TrainConfig, lr_at, shard, train

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_fixtures import batches, lm_loss, tiny_lm  # noqa: E402


def test_schedule_warms_up_then_follows_the_cosine():
    cfg = TrainConfig(steps=110, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, cfg) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=5, warmup_steps=6)


def test_training_reduces_loss_and_evaluates():
    model = tiny_lm()
    x, y = batches(torch.Generator().manual_seed(99))
    hist = train(
        model,
        batches,
        lm_loss,
        TrainConfig(steps=60, warmup_steps=5, eval_every=20, lr=1e-2),
        evaluate=lambda m: {"loss": lm_loss(m, x, y)},
    )
    assert [s for s, _ in hist.evals] == [20, 40, 60]
    assert hist.evals[-1][1]["loss"] < 0.6 * hist.evals[0][1]["loss"] or hist.loss[-1] < 0.5 * hist.loss[0]
    assert len(hist.loss) == 60 and hist.loss[-1] < hist.loss[0]


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    cfg = TrainConfig(steps=24, warmup_steps=4, eval_every=0, checkpoint_every=8, lr=1e-2)
    straight = tiny_lm(dropout=0.1)
    h1 = train(straight, batches, lm_loss, cfg)

    class Killed(Exception):
        pass

    def kill_at_13(step, loss):
        if step == 13:
            raise Killed

    ck = tmp_path / "ck.pt"
    with pytest.raises(Killed):
        train(tiny_lm(dropout=0.1), batches, lm_loss, cfg, checkpoint_path=ck, on_step=kill_at_13)
    resumed = tiny_lm(dropout=0.1)  # fresh process state: only the checkpoint (step 8) carries over
    h2 = train(resumed, batches, lm_loss, cfg, checkpoint_path=ck)
    assert h2.loss == h1.loss
    for (n, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), n


def test_bf16_autocast_trains():
    hist = train(tiny_lm(), batches, lm_loss, TrainConfig(steps=20, warmup_steps=2, eval_every=0, precision="bf16"))
    assert all(math.isfinite(v) for v in hist.loss) and hist.loss[-1] < hist.loss[0]


def test_shard_splits_the_global_batch():
    x, y = torch.arange(8).view(4, 2), torch.arange(8).view(4, 2)
    assert shard((x, y), 1, 2)[0].tolist() == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="does not divide"):
        shard((x, y), 0, 3)


def test_ddp_two_processes_equal_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0"]
    cmd += ["--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0"]
    cmd += [str(HERE / "ddp_train_script.py"), str(out), str(HERE)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    single = tiny_lm()
    train(single, batches, lm_loss, TrainConfig(steps=3, warmup_steps=1, eval_every=0, lr=1e-2))
    # Adam divides by |g|: an element whose gradient is ~0 turns float reduction-order noise into a
    # visible step, so allow 1e-4 (a missing all-reduce would move most weights by ~lr = 1e-2).
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp[name], value, atol=1e-4, rtol=1e-4, msg=name)
