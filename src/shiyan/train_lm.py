r"""Train the shared character-level Transformer LM from the command line, on one process or many.

One process::

    python -m shiyan.train_lm --steps 200 --out runs/lm

DistributedDataParallel on two processes (gloo on CPU, nccl on GPU)::

    torchrun --nproc_per_node=2 -m shiyan.train_lm --steps 200 --out runs/lm

The model is :class:`shiyan.nn.lm.TransformerLM`, the data :func:`shiyan.data.text.char_corpus` and
the loop :func:`shiyan.core.train.train`, which shards each global batch over the processes, so the
run on $P$ processes takes the same steps as one process with the same global batch. Rank 0 writes
``OUT/checkpoint.pt`` (atomic; a second call with the same ``--out`` resumes from it) and
``OUT/summary.json`` (final training and held-out loss, bits per character, world size, seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from shiyan.core.checkpoint import atomic_write_bytes
from shiyan.core.train import TrainConfig, distributed, train
from shiyan.data.text import SOURCES, char_corpus
from shiyan.nn.lm import LMConfig, TransformerLM


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m shiyan.train_lm", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200, help="optimizer steps")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt and summary.json")
    p.add_argument("--source", choices=SOURCES, default="shakespeare", help="text corpus")
    p.add_argument("--n-chars", type=int, default=1_000_000, help="characters of the corpus used")
    p.add_argument("--seq-len", type=int, default=128, help="context length")
    p.add_argument("--batch-size", type=int, default=16, help="global batch (split over the processes)")
    p.add_argument("--d-model", type=int, default=128, help="model width")
    p.add_argument("--n-layers", type=int, default=4, help="Transformer blocks")
    p.add_argument("--n-heads", type=int, default=4, help="attention heads")
    p.add_argument("--positions", choices=("learned", "sinusoidal", "rope", "none"), default="rope")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: only at the end)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every N steps (0: only at the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    args = p.parse_args(argv)
    for name in ("steps", "n_chars", "seq_len", "batch_size", "d_model", "n_layers", "n_heads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    launched = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    if launched:
        backend = "nccl" if cuda else "gloo"
        torch.distributed.init_process_group(backend)
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    device = "cuda" if cuda else "cpu"
    try:
        rank, world = distributed()
        corpus = char_corpus(args.source, args.n_chars)
        cfg = LMConfig(
            vocab_size=corpus.vocab_size,
            d_model=args.d_model,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            max_seq_len=args.seq_len,
            positions=args.positions,
        )
        model = TransformerLM(cfg, generator=torch.Generator().manual_seed(args.seed)).to(device)
        tcfg = TrainConfig(
            steps=args.steps,
            lr=args.lr,
            warmup_steps=min(args.steps, max(1, args.steps // 10)),
            eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every,
            precision=args.precision,
            seed=args.seed,
        )
        evaluate_cpu = corpus.evaluator(args.seq_len, n_windows=32, batch_size=16)

        def next_batch(g: torch.Generator):
            x, y = corpus.batch("train", args.seq_len, args.batch_size, g)
            return x.to(device), y.to(device)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            if device == "cpu":
                return evaluate_cpu(m)
            return evaluate_cpu(_OnDevice(m, device))

        args.out.mkdir(parents=True, exist_ok=True)
        hist = train(
            model,
            next_batch,
            lambda net, x, y: torch.nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten()),
            tcfg,
            evaluate=evaluate,
            checkpoint_path=args.out / "checkpoint.pt",
        )
        held = hist.evals[-1][1]["held_out_loss"]
        summary = {
            "steps": args.steps,
            "world_size": world,
            "device": device,
            "final_train_loss": hist.loss[-1] if hist.loss else float("nan"),
            "held_out_loss": held,
            "held_out_bpc": held / math.log(2),
            "seconds": hist.seconds,
            "parameters": model.num_parameters(),
        }
        if rank == 0:
            atomic_write_bytes(args.out / "summary.json", json.dumps(summary, indent=2).encode())
            print(json.dumps(summary))
        if launched:  # leave together: tearing gloo down while a peer still writes can abort it
            torch.distributed.barrier()
        return summary
    finally:
        if launched:
            torch.distributed.destroy_process_group()


class _OnDevice(torch.nn.Module):
    """Moves the evaluator's CPU windows to the model's device and the logits back."""

    def __init__(self, model: torch.nn.Module, device: str):
        super().__init__()
        self.model, self.device = model, device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).cpu()


if __name__ == "__main__":
    main()
