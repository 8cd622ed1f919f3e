"""Explicit random generators. Library code takes a generator argument; nothing here touches
global random state except :func:`seed_everything`, which the runner calls once per run so that
third-party code that ignores generators is still reproducible."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *names: str | int) -> int:
    """A 63-bit seed derived from ``seed`` and a path of names (independent streams)."""
    h = hashlib.sha256(repr((int(seed), *names)).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def numpy_generator(seed: int, *names: str | int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *names) if names else seed)


def torch_generator(seed: int, *names: str | int, device: str = "cpu"):
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *names) if names else seed)
    return g


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(seed)
