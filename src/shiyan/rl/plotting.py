"""Drawing grid-world values and policies the way the book does: a value in every cell, forbidden
cells shaded, the target marked, and an arrow (or a circle for "stay") per action probability.

Functions draw on a matplotlib ``Axes`` that the caller owns; nothing is saved or shown here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shiyan.rl.gridworld import ACTION_DELTAS, GridWorld

__all__ = ["draw_grid"]


def draw_grid(
    ax: Any,
    env: GridWorld,
    values: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    *,
    title: str = "",
    fmt: str = "{:.1f}",
    min_prob: float = 0.05,
) -> None:
    """Draw ``env``'s board on ``ax`` with optional per-state ``values`` (S,) and ``policy`` (S, A).

    Forbidden cells are orange and the target blue (as in the book). An action with probability
    at least ``min_prob`` gets an arrow whose length grows with its probability; "stay" is a circle.
    With both values and a policy, the value is written in the corner of the cell.
    """
    n_r, n_c = env.n_rows, env.n_cols
    ax.set_xlim(0, n_c)
    ax.set_ylim(n_r, 0)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(n_c) + 0.5, [str(c + 1) for c in range(n_c)])
    ax.set_yticks(np.arange(n_r) + 0.5, [str(r + 1) for r in range(n_r)])
    ax.tick_params(length=0, labelsize=7)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
    for r in range(n_r):
        for c in range(n_c):
            color = "#f2a541" if (r, c) in env.forbidden else ("#5fa8d3" if (r, c) == env.target else "white")
            ax.add_patch(_rect(c, r, color))
    if values is not None:
        vals = np.asarray(values, dtype=np.float64)
        for s, v in enumerate(vals):
            r, c = divmod(s, n_c)
            if policy is None:
                ax.text(c + 0.5, r + 0.5, fmt.format(v), ha="center", va="center", fontsize=8)
            else:
                ax.text(c + 0.04, r + 0.14, fmt.format(v), ha="left", va="center", fontsize=6, color="0.25")
    if policy is not None:
        pi = np.asarray(policy, dtype=np.float64)
        for s in range(env.n_states):
            if env.mdp.terminal[s]:
                continue
            r, c = divmod(s, n_c)
            for a, (dr, dc) in enumerate(ACTION_DELTAS):
                p = pi[s, a]
                if p < min_prob:
                    continue
                if dr == 0 and dc == 0:
                    ax.add_patch(_circle(c + 0.5, r + 0.5, 0.08 + 0.08 * p))
                else:
                    length = 0.12 + 0.26 * p
                    ax.arrow(
                        c + 0.5,
                        r + 0.5,
                        dc * length,
                        dr * length,
                        width=0.015,
                        head_width=0.09,
                        head_length=0.07,
                        length_includes_head=True,
                        color="#2e7d32",
                    )
    if title:
        ax.set_title(title, fontsize=9)


def _rect(c: int, r: int, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((c, r), 1, 1, facecolor=color, edgecolor="0.6", lw=0.6)


def _circle(x: float, y: float, radius: float) -> Any:
    from matplotlib.patches import Circle

    return Circle((x, y), radius, fill=False, edgecolor="#2e7d32", lw=1.2)


def plot_band(ax, x: np.ndarray, curves: np.ndarray, *, color: str, label: str) -> None:
    """Mean over seeds (rows of ``curves``) as a line, min to max as a shaded band."""
    curves = np.asarray(curves, dtype=np.float64)  # (seeds, len(x)); NaN before a seed's first episode
    seen = ~np.all(np.isnan(curves), axis=0)
    filled = np.where(np.isnan(curves), np.inf, curves)
    lo, hi = filled.min(axis=0), np.where(np.isnan(curves), -np.inf, curves).max(axis=0)
    mean = np.where(seen, np.nansum(curves, axis=0) / np.maximum((~np.isnan(curves)).sum(axis=0), 1), np.nan)
    ax.plot(x, mean, color=color, label=label)
    if len(curves) > 1:
        ax.fill_between(x[seen], lo[seen], hi[seen], color=color, alpha=0.2, lw=0)
