from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from shiyan.core.config import ConfigError, TopicConfig, apply_overrides, describe, field_docs


@dataclasses.dataclass(frozen=True)
class Cfg(TopicConfig):
    n: int = 3
    """How many."""
    lr: float = 0.1
    """Step size."""
    sizes: tuple[int, ...] = (1, 2)
    """Sizes to try."""
    mode: Literal["a", "b"] = "a"
    """Which mode."""
    flag: bool = False
    """A switch."""

    def validate(self) -> None:
        if self.n < 0:
            raise ConfigError(f"n must be >= 0; got {self.n}")


def test_field_docs_reads_attribute_docstrings():
    docs = field_docs(Cfg)
    assert docs == {
        "seed": "Seed of every random generator the run creates.",
        "n": "How many.",
        "lr": "Step size.",
        "sizes": "Sizes to try.",
        "mode": "Which mode.",
        "flag": "A switch.",
    }
    assert [row[0] for row in describe(Cfg)] == ["seed", "n", "lr", "sizes", "mode", "flag"]


def test_overrides_parse_each_type():
    cfg = apply_overrides(Cfg(), ["n=5", "lr=1e-3", "sizes=4,5,6", "mode=b", "flag=true", "seed=7"])
    assert (cfg.n, cfg.lr, cfg.sizes, cfg.mode, cfg.flag, cfg.seed) == (5, 1e-3, (4, 5, 6), "b", True, 7)


@pytest.mark.parametrize(
    "item, words",
    [
        ("n=abc", ["'n'", "int"]),
        ("lr=fast", ["'lr'", "float"]),
        ("mode=c", ["'mode'", "Literal"]),
        ("flag=maybe", ["'flag'", "bool"]),
        ("sizes=1,x", ["'sizes'", "tuple"]),
        ("nn=3", ["unknown field 'nn'", "did you mean n"]),
        ("n", ["key=value"]),
    ],
)
def test_bad_override_names_field_and_type(item, words):
    with pytest.raises(ConfigError) as err:
        apply_overrides(Cfg(), [item])
    for w in words:
        assert w in str(err.value)


def test_validate_and_type_check_run_on_construction():
    with pytest.raises(ConfigError, match="n must be"):
        Cfg(n=-1)
    with pytest.raises(ConfigError, match="Cfg.lr"):
        Cfg(lr="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="profile must be one of"):
        Cfg.profile("huge")


def test_digest_is_stable_and_sensitive():
    assert Cfg().digest() == Cfg().digest()
    assert Cfg().digest() != Cfg(n=4).digest()
    assert Cfg(lr=1).lr == 1
