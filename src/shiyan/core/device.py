"""Device selection: CUDA when present and asked for, else CPU."""

from __future__ import annotations


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
