"""Datasets that ship inside installed packages: nothing is fetched at run time.

One loader API::

    from shiyan import data
    ds = data.load("iris")          # -> Dataset(X, y, feature_names, target_names, ...)
    data.available()                # names and where each comes from

A dataset whose package is missing raises :class:`MissingDependencyError`, naming the package
and the pip command that installs it. Loaded sets are cached per process.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable

import numpy as np


class MissingDependencyError(ImportError):
    """An optional package a dataset (or a reference) needs is not installed."""

    def __init__(self, package: str, purpose: str, pip_name: str | None = None):
        self.package = package
        pip_name = pip_name or package
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed; install it with: pip install {pip_name}"
        )


class UnknownDatasetError(KeyError):
    def __init__(self, name: str, known: list[str]):
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"unknown dataset {name!r}{hint} (available: {', '.join(sorted(known))})")

    def __str__(self) -> str:
        return self.args[0]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A table: features ``X`` (n, d), target ``y`` (n,), with names and provenance."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...] | None
    task: str
    """'classification' or 'regression'."""
    source: str
    """Where the data comes from (package and file), shown on the posts."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape


def require(module: str, purpose: str, pip_name: str | None = None):
    """Import ``module`` or raise :class:`MissingDependencyError` with the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, purpose, pip_name) from None


def _sklearn(loader: str, task: str, source: str) -> Callable[[], Dataset]:
    def load() -> Dataset:
        datasets = require("sklearn.datasets", f"dataset via {loader}", "scikit-learn")
        bunch = getattr(datasets, loader)()
        target_names = getattr(bunch, "target_names", None)
        return Dataset(
            name=loader.removeprefix("load_"),
            X=np.asarray(bunch.data, dtype=np.float64),
            y=np.asarray(bunch.target),
            feature_names=tuple(str(f) for f in getattr(bunch, "feature_names", range(bunch.data.shape[1]))),
            target_names=tuple(str(t) for t in target_names) if target_names is not None else None,
            task=task,
            source=source,
        )

    return load


_LOADERS: dict[str, tuple[Callable[[], Dataset], str]] = {
    "iris": (
        _sklearn("load_iris", "classification", "scikit-learn (Fisher 1936)"),
        "150 flowers, 4 features, 3 classes",
    ),
    "wine": (_sklearn("load_wine", "classification", "scikit-learn (UCI wine)"), "178 wines, 13 features, 3 classes"),
    "breast_cancer": (
        _sklearn("load_breast_cancer", "classification", "scikit-learn (UCI Wisconsin diagnostic)"),
        "569 tumours, 30 features, 2 classes",
    ),
    "digits": (
        _sklearn("load_digits", "classification", "scikit-learn (UCI optical digits, 8x8)"),
        "1797 images 8x8, 10 classes",
    ),
    "diabetes": (
        _sklearn("load_diabetes", "regression", "scikit-learn (Efron et al. 2004)"),
        "442 patients, 10 features",
    ),
    "linnerud": (
        _sklearn("load_linnerud", "regression", "scikit-learn (Linnerud exercise)"),
        "20 men, 3 exercise features, 3 targets",
    ),
}


def available() -> dict[str, str]:
    """Dataset name -> one-line description."""
    return {name: desc for name, (_, desc) in _LOADERS.items()}


@functools.cache
def load(name: str) -> Dataset:
    """Load a bundled dataset by name (cached). Arrays are read-only: copy before changing them."""
    if name not in _LOADERS:
        raise UnknownDatasetError(name, list(_LOADERS))
    ds = _LOADERS[name][0]()
    ds.X.setflags(write=False)
    ds.y.setflags(write=False)
    return ds


def train_test_split(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays of a random split; ``rng`` is explicit so the split is reproducible."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}")
    perm = rng.permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


__all__ = [
    "Dataset",
    "MissingDependencyError",
    "UnknownDatasetError",
    "available",
    "load",
    "require",
    "train_test_split",
]
