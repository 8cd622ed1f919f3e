"""Device selection: CUDA when present and asked for, else CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def select_device(prefer: str = "auto") -> str:
    if prefer not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {prefer!r}")
    if prefer == "cpu":
        return "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    except ImportError:  # pragma: no cover
        pass
    if prefer == "cuda":
        raise RuntimeError("device='cuda' was asked for but torch.cuda.is_available() is False")
    return "cpu"


def describe_device(device: str) -> str:
    import platform

    if device == "cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{platform.machine()}"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op torch threads, then restore the previous count.

    Small models are fastest on one thread, and on a shared machine one thread also gives the
    steadiest timings."""
    import torch

    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
