"""Differentiable metrics: soft scores equal scikit-learn's hard scores on one-hot inputs, gradients
pass gradcheck, and the REINFORCE estimator is unbiased against exact enumeration."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from shiyan.nn.metrics import (
    accuracy_hard,
    binary_log_probs,
    expected_metric,
    f1_hard,
    reinforce_surrogate,
    soft_accuracy,
    soft_confusion,
    soft_f1,
    soft_f1_loss,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread avoids OpenMP contention on a busy machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _sk_f1(y_true, y_pred, **kw) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on the 0/0 cases we test on purpose
        return float(f1_score(np.asarray(y_true), np.asarray(y_pred), zero_division=0.0, **kw))


def _one_hot_probs(pred: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(pred, k).to(torch.float64)


# --- one-hot probabilities: the soft scores are the hard scores ---------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_soft_f1_binary_equals_sklearn_on_hard_predictions(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    y = rng.random(n) < rng.random()  # any class balance, including none or all positive
    pred = rng.random(n) < rng.random()
    probs = torch.tensor(pred, dtype=torch.float64)
    got = float(soft_f1(probs, torch.tensor(y, dtype=torch.long)))
    assert got == pytest.approx(_sk_f1(y, pred), abs=1e-15)
    assert float(f1_hard(torch.tensor(pred, dtype=torch.long), torch.tensor(y, dtype=torch.long))) == pytest.approx(
        _sk_f1(y, pred), abs=1e-15
    )


def test_soft_f1_all_negative_is_zero_like_sklearn():
    y = torch.zeros(5, dtype=torch.long)
    assert float(soft_f1(torch.zeros(5, dtype=torch.float64), y)) == _sk_f1(y.numpy(), y.numpy()) == 0.0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_soft_f1_multiclass_equals_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    n = int(rng.integers(1, 50))
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    probs = _one_hot_probs(torch.tensor(pred), k)
    got = float(soft_f1(probs, torch.tensor(y), average=average))
    expected = _sk_f1(y, pred, average=average, labels=list(range(k)))
    assert got == pytest.approx(expected, abs=1e-14)
    hard = float(f1_hard(torch.tensor(pred), torch.tensor(y), average=average, n_classes=k))
    assert hard == pytest.approx(expected, abs=1e-14)


def test_f1_hard_is_vectorised_over_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    preds = rng.integers(0, 3, (7, 30))
    got = f1_hard(torch.tensor(preds), torch.tensor(y), average="macro", n_classes=3)
    expected = [_sk_f1(y, p, average="macro", labels=[0, 1, 2]) for p in preds]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-14)
    acc = accuracy_hard(torch.tensor(preds), torch.tensor(y))
    np.testing.assert_allclose(acc.numpy(), [accuracy_score(y, p) for p in preds], atol=1e-15)


def test_soft_accuracy_one_hot_and_low_temperature():
    rng = np.random.default_rng(1)
    y = torch.tensor(rng.integers(0, 4, 25))
    logits = torch.tensor(rng.normal(size=(25, 4)))
    pred = logits.argmax(1)
    expected = accuracy_score(y.numpy(), pred.numpy())
    assert float(soft_accuracy(_one_hot_probs(pred, 4), y)) == pytest.approx(expected, abs=1e-15)
    # the smoothed arg-max: softmax(z / tau) -> one-hot as tau -> 0
    assert float(soft_accuracy(torch.softmax(logits / 1e-4, 1), y)) == pytest.approx(expected, abs=1e-6)
    assert abs(float(soft_accuracy(torch.softmax(logits, 1), y)) - expected) > 1e-3


def test_soft_counts_and_the_short_form():
    rng = np.random.default_rng(2)
    p = torch.tensor(rng.random(30))
    y = torch.tensor(rng.integers(0, 2, 30))
    tp, fp, fn = soft_confusion(p, y)
    yf = y.double()
    torch.testing.assert_close(tp + fp, p.sum())  # every unit of predicted mass is TP or FP
    torch.testing.assert_close(tp + fn, yf.sum())  # every positive is TP or FN
    torch.testing.assert_close(soft_f1(p, y), 2 * (p * yf).sum() / (p.sum() + yf.sum()))
    torch.testing.assert_close(soft_f1_loss(p, y), 1 - soft_f1(p, y))


# --- gradients ------------------------------------------------------------------------------------------


def test_gradcheck_soft_f1_binary():
    rng = np.random.default_rng(3)
    z = torch.tensor(rng.normal(size=20), requires_grad=True)
    y = torch.tensor(rng.integers(0, 2, 20))
    assert torch.autograd.gradcheck(lambda t: soft_f1_loss(torch.sigmoid(t), y), (z,))
    assert torch.autograd.gradgradcheck(lambda t: soft_f1_loss(torch.sigmoid(t), y), (z,))


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_gradcheck_soft_f1_multiclass_and_soft_accuracy(average):
    rng = np.random.default_rng(4)
    z = torch.tensor(rng.normal(size=(15, 4)), requires_grad=True)
    y = torch.tensor(rng.integers(0, 4, 15))
    assert torch.autograd.gradcheck(lambda t: soft_f1(torch.softmax(t, 1), y, average=average), (z,))
    assert torch.autograd.gradcheck(lambda t: soft_accuracy(torch.softmax(t, 1), y), (z,))


def test_gradient_is_finite_at_the_zero_division_point():
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    loss = soft_f1_loss(p, torch.zeros(4, dtype=torch.long))
    (g,) = torch.autograd.grad(loss, p)
    assert torch.isfinite(g).all()


# --- REINFORCE ------------------------------------------------------------------------------------------


def _estimator_mean_and_se(logits, y, metric, baseline, n_batches=40, n_samples=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    grads = []
    for _ in range(n_batches):
        est = reinforce_surrogate(
            binary_log_probs(logits) if logits.dim() == 1 else torch.log_softmax(logits, 1),
            y,
            metric,
            n_samples,
            g,
            baseline,
        )
        grads.append(torch.autograd.grad(est.surrogate, logits)[0])
    stack = torch.stack(grads)
    return stack.mean(0), stack.std(0) / n_batches**0.5


@pytest.mark.parametrize("baseline", ["loo", "none", 0.3])
def test_reinforce_is_unbiased_for_binary_f1(baseline):
    """Mean of the estimates = exact gradient of E[F1] (enumeration of all 2^5 prediction vectors)."""
    z = torch.tensor([0.3, -1.0, 0.8, -0.2, 1.5], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1, 0, 1, 0, 0])
    metric = lambda yp, yt: f1_hard(yp, yt)  # noqa: E731
    exact = torch.autograd.grad(expected_metric(binary_log_probs(z), y, metric), z)[0]
    mean, se = _estimator_mean_and_se(z, y, metric, baseline)
    z_scores = (mean - exact).abs() / se
    assert float(z_scores.max()) < 4.5, (mean, exact, se)
    assert float((mean - exact).abs().max()) < 0.1 * float(exact.abs().max())


def test_reinforce_is_unbiased_for_macro_f1_three_classes():
    rng = np.random.default_rng(5)
    z = torch.tensor(rng.normal(size=(3, 3)), requires_grad=True)
    y = torch.tensor([0, 2, 1])
    metric = lambda yp, yt: f1_hard(yp, yt, average="macro", n_classes=3)  # noqa: E731
    exact = torch.autograd.grad(expected_metric(torch.log_softmax(z, 1), y, metric), z)[0]
    mean, se = _estimator_mean_and_se(z, y, metric, "loo")
    assert float(((mean - exact).abs() / se).max()) < 4.5


def test_expected_metric_of_a_constant_is_the_constant():
    z = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    got = expected_metric(torch.log_softmax(z, 1), y, lambda yp, yt: torch.full(yp.shape[:1], 0.7, dtype=torch.float64))
    assert float(got) == pytest.approx(0.7, abs=1e-14)


# --- errors ---------------------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    p = torch.rand(5, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match="average"):
        soft_f1(p, y, average="weighted")
    with pytest.raises(ValueError, match="probs"):
        soft_f1(p * float("nan"), y)
    with pytest.raises(ValueError, match="probs must lie in"):
        soft_f1(p + 2, y)
    with pytest.raises(ValueError, match="target"):
        soft_f1(p, y[:3])
    with pytest.raises(TypeError, match="target"):
        soft_f1(p, y.double())
    with pytest.raises(ValueError, match="shape \\(N, K\\)"):
        soft_accuracy(p, y)
    with pytest.raises(TypeError, match="generator"):
        reinforce_surrogate(binary_log_probs(p), y, f1_hard, 10, None)
    with pytest.raises(ValueError, match="n_samples"):
        reinforce_surrogate(binary_log_probs(p), y, f1_hard, 1, torch.Generator())
    with pytest.raises(ValueError, match="max_configs"):
        expected_metric(binary_log_probs(torch.zeros(30)), torch.zeros(30, dtype=torch.long), f1_hard)
