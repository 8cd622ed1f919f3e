"""The initialization topic end to end: quick profile through the runner, the variance helper, config errors."""

from __future__ import annotations

import math

import pytest
import torch

from shiyan.core import ConfigError, Store
from shiyan.core.runner import build_config, execute
from shiyan.topics import get_topic
from shiyan.topics.initialization import AttentionProbe, preactivation_variances

SLUG = "initialization"


def test_quick_profile_passes(tmp_path):
    topic = get_topic(SLUG)
    rec = execute(topic, build_config(topic, "quick"), Store(tmp_path), profile="quick")
    assert rec.error is None, rec.error
    assert rec.status == "passed", [c for c in rec.claims if not c["passed"]]
    assert {f["name"] for f in rec.figures} == {"variance", "attention-scale", "norm-position"}


def test_linear_variance_follows_the_closed_form():
    """Identity activation is not offered; with tanh at tiny weights tanh(z) ~ z, so Var z_l = (n σ²)^l Var x."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 200, generator=g, dtype=torch.float64) * 1e-3
    sigma = 1.1 / math.sqrt(200)
    var = preactivation_variances(x, [sigma] * 5, "tanh", g)
    for layer, v in enumerate(var, start=1):
        assert v == pytest.approx(1e-6 * (200 * sigma**2) ** layer, rel=0.08)


def test_probe_is_causal_softmax_attention():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    out = AttentionProbe(scale=None)(q, k, v, causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("override", ["depth=3", "lr=0", "n_heads=3"])
def test_bad_config_names_the_field(override):
    topic = get_topic(SLUG)
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        build_config(topic, "quick", None, [override])
