"""Figures: matplotlib with the Agg backend, deterministic SVG for the site and PNG for terminals."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "shiyan",
    "svg.fonttype": "none",
}


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """``fig, ax = new_figure()`` with the house style."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(nrows, ncols, **kwargs)
    return fig, ax


def save_figure(fig: Any, stem: Path) -> tuple[Path, Path]:
    """Write ``stem.svg`` and ``stem.png`` atomically (temp file + rename) and close the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    with plt.rc_context(STYLE):
        fig.tight_layout()
        for ext, kwargs in (
            ("svg", {"metadata": {"Date": None}}),
            ("png", {"dpi": 110, "metadata": {"Software": None}}),
        ):
            final = stem.with_suffix(f".{ext}")
            tmp = final.with_name(f".{final.name}.tmp")
            fig.savefig(tmp, format=ext, **kwargs)
            os.replace(tmp, final)
            out.append(final)
    plt.close(fig)
    return out[0], out[1]
