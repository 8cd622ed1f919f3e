"""The ``python -m shiyan.train_lm`` entry point: two DDP processes under torchrun (gloo, CPU) finish,
write a checkpoint that loads into the shared LM, and take the same steps as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from shiyan.core.checkpoint import load_checkpoint
from shiyan.data.text import char_corpus
from shiyan.nn.lm import LMConfig, TransformerLM
from shiyan.train_lm import main, parse_args

SMALL = ["--n-chars", "20000", "--seq-len", "32", "--batch-size", "4", "--d-model", "32", "--n-layers", "1"]


def test_torchrun_two_processes_writes_a_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0"]
    cmd += ["--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "-m", "shiyan.train_lm"]
    cmd += ["--steps", "3", "--out", str(out), *SMALL]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 3
    vocab = char_corpus("shakespeare", 20000).vocab_size
    model = TransformerLM(
        LMConfig(vocab_size=vocab, d_model=32, n_layers=1, n_heads=4, max_seq_len=32, positions="rope")
    )
    model.load_state_dict(state["model"])  # the checkpoint is the shared LM's

    # one process on the same global batches takes the same three steps (DDP averages the shards' gradients)
    single = main(["--steps", "3", "--out", str(tmp_path / "single"), *SMALL])
    ref = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    for name, value in ref.items():
        torch.testing.assert_close(state["model"][name], value, atol=1e-4, rtol=1e-4, msg=name)
    assert summary["held_out_loss"] == pytest.approx(single["held_out_loss"], abs=1e-4)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--steps", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        parse_args(["--steps", "3"])  # --out is required
