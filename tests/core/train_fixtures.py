"""A tiny LM and a deterministic batch source shared by the training-loop tests."""

import torch

from shiyan.nn.lm import LMConfig, TransformerLM

TEXT = torch.tensor(list(b"the quick brown fox jumps over the lazy dog. " * 40), dtype=torch.long)


def tiny_lm(dropout: float = 0.0) -> TransformerLM:
    # no biases: the key bias has an exactly-zero gradient, which Adam turns float noise into full steps
    cfg = LMConfig(vocab_size=256, d_model=32, n_layers=2, n_heads=2, max_seq_len=32, dropout=dropout, bias=False)
    return TransformerLM(cfg, generator=torch.Generator().manual_seed(0))


def batches(g: torch.Generator, batch: int = 8, seq: int = 24):
    start = torch.randint(0, len(TEXT) - seq - 1, (batch,), generator=g)
    x = torch.stack([TEXT[s : s + seq] for s in start.tolist()])
    y = torch.stack([TEXT[s + 1 : s + seq + 1] for s in start.tolist()])
    return x, y


def lm_loss(model, x, y):
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
