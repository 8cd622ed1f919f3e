"""The run context handed to every topic's ``run(cfg, ctx)``.

It owns the side effects a topic may need -- generators, figures, progress bars, the device --
so that the topic body stays a composition of pure library calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from shiyan.core import seeding
from shiyan.core.result import FigureRef

T = TypeVar("T")


@dataclasses.dataclass
class RunContext:
    """Per-run services. ``out_dir`` is a private staging folder; the runner moves it into the
    data directory atomically when the run finishes, so a killed run leaves nothing behind."""

    seed: int
    profile: str
    out_dir: Path
    figure_prefix: str = ""
    device: str = "cpu"
    show_progress: bool = False
    _figures: list[FigureRef] = dataclasses.field(default_factory=list)

    # -- randomness -------------------------------------------------------------------------
    def numpy_generator(self, *names: str | int) -> np.random.Generator:
        """An independent numpy generator for the stream ``names`` of this run's seed."""
        return seeding.numpy_generator(self.seed, "ctx", *names)

    def torch_generator(self, *names: str | int, device: str = "cpu"):
        return seeding.torch_generator(self.seed, "ctx", *names, device=device)

    # -- figures ----------------------------------------------------------------------------
    def save_figure(self, fig: Any, name: str, caption_en: str = "", caption_zh: str = "") -> FigureRef:
        """Write a matplotlib figure as SVG (for the site) and PNG (for terminals/README)."""
        from shiyan.core.figures import save_figure

        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"figure name must be alphanumeric with - or _; got {name!r}")
        svg, png = save_figure(fig, self.out_dir / name)
        ref = FigureRef(
            name=name,
            path=f"{self.figure_prefix}{svg.name}",
            png=f"{self.figure_prefix}{png.name}",
            caption_en=caption_en,
            caption_zh=caption_zh,
        )
        self._figures.append(ref)
        return ref

    # -- progress ---------------------------------------------------------------------------
    def progress(self, iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
        """Iterate with a progress bar (shown on a terminal, silent in tests and CI)."""
        if not self.show_progress:
            yield from iterable
            return
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(description or "working", total=total)
            for item in iterable:
                yield item
                bar.advance(task)

    @contextlib.contextmanager
    def timer(self) -> Iterator[dict[str, float]]:
        """``with ctx.timer() as t: ...`` then ``t["s"]`` holds the wall seconds."""
        box: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            yield box
        finally:
            box["s"] = time.perf_counter() - t0


def default_show_progress() -> bool:
    return os.environ.get("CI") is None and os.isatty(2)
