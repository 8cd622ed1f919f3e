"""TRPO oracles: CG vs torch.linalg.solve, Fisher-vector products vs the explicit KL Hessian (and the
score outer-product Fisher), the step's quadratic KL, the line search, KLs vs torch.distributions."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, Normal, kl_divergence
from torch.func import functional_call

from shiyan.rl.reference import sb3_trpo_trust_region
from shiyan.rl.trpo import (
    CategoricalPolicy,
    GaussianPolicy,
    TRPOConfig,
    categorical_kl,
    conjugate_gradient,
    fisher_vector_product,
    flat_params,
    gaussian_kl,
    line_search,
    max_step_size,
    set_flat_params,
    surrogate,
    train_trpo,
    trpo_update,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=_gen(seed), dtype=torch.float64)
    return a @ a.T + n * torch.eye(n, dtype=torch.float64)


# -- conjugate gradient ------------------------------------------------------------------------------
def test_conjugate_gradient_matches_linalg_solve():
    a = _spd(12, 1)
    b = torch.randn(12, generator=_gen(2), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, n_iters=12, residual_tol=0.0)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-10)


def test_conjugate_gradient_one_iteration_is_a_steepest_descent_step_and_tolerance_stops():
    a = _spd(6, 3)
    b = torch.randn(6, generator=_gen(4), dtype=torch.float64)
    x1 = conjugate_gradient(lambda v: a @ v, b, n_iters=1)
    torch.testing.assert_close(x1, (b @ b) / (b @ a @ b) * b)
    calls = []
    x0 = conjugate_gradient(lambda v: calls.append(1) or a @ v, torch.zeros(6, dtype=torch.float64), n_iters=5)
    assert calls == [] and torch.all(x0 == 0)  # residual below tolerance at the start: no product at all
    with pytest.raises(ValueError, match="n_iters"):
        conjugate_gradient(lambda v: a @ v, b, n_iters=0)
    with pytest.raises(ValueError, match="b must be a vector"):
        conjugate_gradient(lambda v: a @ v, a, n_iters=2)


# -- KL divergences and log-probabilities ------------------------------------------------------------
def test_categorical_kl_matches_torch_distributions():
    g = _gen(5)
    p, q = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    expected = kl_divergence(Categorical(logits=p), Categorical(logits=q))
    torch.testing.assert_close(categorical_kl(p, q), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(categorical_kl(p, p), torch.zeros(7), atol=1e-6, rtol=0)


def test_gaussian_kl_matches_torch_distributions():
    g = _gen(6)
    mp, mq = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sp, sq = 0.5 * torch.randn(5, 3, generator=g), 0.5 * torch.randn(3, generator=g)  # per-state and shared
    expected = kl_divergence(Independent(Normal(mp, sp.exp()), 1), Independent(Normal(mq, sq.exp()), 1))
    torch.testing.assert_close(gaussian_kl(mp, sp, mq, sq), expected, rtol=1e-5, atol=1e-6)


def test_policy_log_probs_match_torch_distributions():
    cat = CategoricalPolicy(3, 4, (8,), _gen(7))
    obs = torch.randn(6, 3, generator=_gen(8))
    params = cat.dist_params(obs)
    acts = cat.sample(params, _gen(9))
    torch.testing.assert_close(cat.log_prob(params, acts), Categorical(logits=params[0]).log_prob(acts))
    gauss = GaussianPolicy(3, 2, (8,), _gen(10), log_std_init=-0.3)
    params = gauss.dist_params(obs)
    acts = gauss.sample(params, _gen(11))
    dist = Independent(Normal(params[0], params[1].exp().expand_as(params[0])), 1)
    torch.testing.assert_close(gauss.log_prob(params, acts), dist.log_prob(acts))


# -- Fisher-vector products --------------------------------------------------------------------------
def _explicit_kl_hessian(policy, obs) -> torch.Tensor:
    """Hessian of mean KL(pi_old || pi_theta) in the flat parameters at theta_old, by autograd."""
    names = [n for n, _ in policy.named_parameters()]
    shapes = [p.shape for _, p in policy.named_parameters()]
    theta0 = flat_params(policy).double()
    with torch.no_grad():
        old = tuple(t.double() for t in policy(obs))

    def mean_kl(theta: torch.Tensor) -> torch.Tensor:
        tensors, offset = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            n = math.prod(shape)
            tensors[name] = theta[offset : offset + n].view(shape)
            offset += n
        new = functional_call(policy, tensors, (obs,), strict=False, tie_weights=False)
        return policy.kl(old, new).mean()

    return torch.autograd.functional.hessian(mean_kl, theta0)


class _Wrap(torch.nn.Module):
    """Expose dist_params as forward so that functional_call can swap the parameters."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        return self.policy.dist_params(obs)

    def kl(self, old, new):
        return self.policy.kl(old, new)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fisher_vector_product_equals_explicit_kl_hessian_times_v(kind):
    policy = CategoricalPolicy(2, 3, (3,), _gen(12)) if kind == "categorical" else GaussianPolicy(2, 2, (3,), _gen(12))
    policy = policy.double()
    with torch.no_grad():  # a non-trivial last layer, so the Fisher matrix is not nearly zero
        policy.net[-1].weight.normal_(generator=_gen(13))
    obs = torch.randn(10, 2, generator=_gen(14), dtype=torch.float64)
    wrap = _Wrap(policy)
    hess = _explicit_kl_hessian(wrap, obs)  # (P, P)
    n_params = hess.shape[0]
    v = torch.randn(n_params, generator=_gen(15), dtype=torch.float64)
    damping = 0.05
    fvp = fisher_vector_product(policy, obs, damping)
    torch.testing.assert_close(fvp(v), hess @ v + damping * v, rtol=1e-8, atol=1e-10)
    assert torch.linalg.norm(hess @ v) > 1e-3

    if kind == "categorical":  # the KL Hessian at theta_old is the Fisher matrix E[grad log pi grad log pi^T]
        params = list(policy.parameters())
        logits = policy.dist_params(obs)[0]  # (B, A)
        probs = torch.softmax(logits, -1).detach()
        fisher = torch.zeros(n_params, n_params, dtype=torch.float64)
        for i in range(obs.shape[0]):
            for a in range(3):
                score = torch.autograd.grad(torch.log_softmax(logits[i], -1)[a], params, retain_graph=True)
                s = torch.cat([t.reshape(-1) for t in score])
                fisher += probs[i, a] * torch.outer(s, s)
        fisher /= obs.shape[0]
        torch.testing.assert_close(hess, fisher, rtol=1e-7, atol=1e-10)


def test_step_size_puts_the_step_on_the_trust_region_boundary():
    """d = sqrt(2 delta / x^T F x) x  =>  1/2 d^T F d = delta, for x = F^{-1} g from CG."""
    f = _spd(8, 16)
    g = torch.randn(8, generator=_gen(17), dtype=torch.float64)
    x = conjugate_gradient(lambda v: f @ v, g, n_iters=8, residual_tol=0.0)
    delta = 0.013
    beta = max_step_size(x, f @ x, delta)
    d = beta * x
    assert 0.5 * float(d @ f @ d) == pytest.approx(delta, rel=1e-10)
    # d is the maximiser of g^T d on the ellipsoid: g^T d = sqrt(2 delta g^T F^{-1} g)
    assert float(g @ d) == pytest.approx(math.sqrt(2 * delta * float(g @ torch.linalg.solve(f, g))), rel=1e-8)
    with pytest.raises(ValueError, match="max_kl"):
        max_step_size(x, f @ x, 0.0)


# -- line search -------------------------------------------------------------------------------------
def test_line_search_rejects_points_that_violate_kl_or_do_not_improve():
    start = torch.zeros(2)
    step = torch.tensor([1.0, 0.0])
    # KL = 0.5 |theta|^2 * 0.05; improvement = theta_0 (linear): the full step has KL 0.025 > 0.01
    calls = []

    def evaluate_at(theta):
        calls.append(float(theta[0]))
        return float(theta[0]), 0.025 * float(theta @ theta)

    res = line_search(evaluate_at, start, step, max_kl=0.01, shrink=0.8, max_backtracks=10)
    # the first fraction 0.8^j with 0.025 * 0.8^(2j) <= 0.01 is j = 3 (0.8^3 = 0.512)
    assert res.accepted and res.n_tries == 4 and res.fraction == pytest.approx(0.8**3)
    assert res.kl <= 0.01 and res.kl == pytest.approx(0.025 * 0.8**6)
    assert calls == pytest.approx([1.0, 0.8, 0.64, 0.512])
    # a step that worsens the surrogate is never accepted, however small its KL
    res = line_search(lambda th: (-float(th[0]), 0.0), start, step, max_kl=0.01, max_backtracks=5)
    assert not res.accepted and torch.equal(res.params, start) and res.n_tries == 5
    # a KL that is never small enough: nothing accepted
    res = line_search(lambda th: (1.0, 1.0), start, step, max_kl=0.01, max_backtracks=3)
    assert not res.accepted
    with pytest.raises(ValueError, match="shrink"):
        line_search(evaluate_at, start, step, 0.01, shrink=1.0)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_trpo_update_respects_the_kl_bound_and_improves_the_surrogate(kind):
    g = _gen(18)
    obs = torch.randn(256, 4, generator=g)
    if kind == "categorical":
        policy = CategoricalPolicy(4, 3, (16,), _gen(19))
    else:
        policy = GaussianPolicy(4, 2, (16,), _gen(19))
    with torch.no_grad():
        old = tuple(t.detach().clone() for t in policy.dist_params(obs))
        actions = policy.sample(old, g)
        old_lp = policy.log_prob(old, actions)
    adv = torch.randn(256, generator=g)
    with torch.no_grad():
        before = float(surrogate(policy, obs, actions, adv, old_lp))
    info = trpo_update(policy, obs, actions, adv, max_kl=0.005, cg_iters=10, damping=0.01)
    assert info.accepted
    assert info.quad_kl == pytest.approx(0.005, rel=1e-4)
    with torch.no_grad():
        new = policy.dist_params(obs)
        if kind == "categorical":
            kl = kl_divergence(Categorical(logits=old[0]), Categorical(logits=new[0])).mean()
        else:
            std_old, std_new = old[1].exp().expand_as(old[0]), new[1].exp().expand_as(new[0])
            kl = kl_divergence(Independent(Normal(old[0], std_old), 1), Independent(Normal(new[0], std_new), 1)).mean()
    assert float(kl) <= 0.005 + 1e-7
    assert float(kl) == pytest.approx(info.kl, rel=1e-4)
    with torch.no_grad():
        after = float(surrogate(policy, obs, actions, adv, old_lp))
    assert after - before == pytest.approx(info.improvement, rel=1e-4, abs=1e-7) and after > before


def test_flat_params_round_trip_and_validation():
    policy = GaussianPolicy(3, 2, (5,), _gen(20))
    theta = flat_params(policy)
    set_flat_params(policy, theta + 1.0)
    torch.testing.assert_close(flat_params(policy), theta + 1.0)
    with pytest.raises(ValueError, match="flat"):
        set_flat_params(policy, theta[:-1])
    with pytest.raises(ValueError, match="n_steps"):
        TRPOConfig(n_steps=0)
    with pytest.raises(ValueError, match="shrink"):
        TRPOConfig(shrink=1.5)


@pytest.mark.parametrize(("env_id", "kind"), [("CartPole-v1", CategoricalPolicy), ("Pendulum-v1", GaussianPolicy)])
def test_train_trpo_runs_every_update_within_kl_and_is_reproducible(env_id, kind):
    cfg = TRPOConfig(total_steps=512, n_steps=128, n_envs=2, n_critic_updates=2, batch_size=64, hidden=(16,))
    a = train_trpo(env_id, cfg, 1, generator=_gen(0))
    b = train_trpo(env_id, cfg, 1, generator=_gen(0))
    assert isinstance(a.policy, kind) and a.n_steps == 512 and len(a.updates) == 2
    assert all(u.kl <= cfg.max_kl for u in a.updates)
    assert [u.kl for u in a.updates] == [u.kl for u in b.updates]
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)


def test_categorical_sampling_by_inversion_matches_softmax_frequencies():
    """Empirical action frequencies of CategoricalPolicy.sample equal softmax(logits) (40k draws per state: the
    standard error of a frequency is below 0.0025), and near-deterministic logits never give an index out of range."""
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0], [3.0, 3.0, 3.0, 3.0], [-2.0, 0.5, 0.0, 1.5]])
    n = 40_000
    draws = CategoricalPolicy.sample((logits.repeat_interleave(n, dim=0),), _gen(5)).reshape(3, n)
    freq = torch.stack([torch.bincount(row, minlength=4) for row in draws]).double() / n  # (3, 4)
    torch.testing.assert_close(freq, torch.softmax(logits.double(), dim=-1), atol=0.012, rtol=0)
    peaked = torch.tensor([[-1e4, -1e4, 50.0], [50.0, -1e4, -1e4]])
    assert CategoricalPolicy.sample((peaked.repeat(500, 1),), _gen(6)).reshape(500, 2).tolist() == [[2, 0]] * 500


# -- the same step as sb3-contrib --------------------------------------------------------------------
class _ToyControl(gym.Env):
    """A tiny continuous-control task with three action dimensions: reward $-\\|a - W s\\|^2$ for a fixed W."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    w = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.s = 0, self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return self.s, {}

    def step(self, action):
        reward = -float(np.sum((np.asarray(action) - self.w @ self.s) ** 2))
        self.t += 1
        self.s = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return self.s, reward, False, self.t >= 16, {}


def _sb3_one_update(region: dict[str, float]):
    """sb3-contrib's policy before and after one TRPO update, and the rollout it was computed on."""
    import copy

    sb3_contrib = pytest.importorskip("sb3_contrib")
    model = sb3_contrib.TRPO(
        "MlpPolicy",
        _ToyControl(),
        n_steps=96,
        batch_size=96,
        cg_max_steps=15,
        n_critic_updates=1,
        policy_kwargs={"net_arch": [8, 8]},
        seed=0,
        device="cpu",
        **region,
    )
    before = copy.deepcopy(model.policy.state_dict())
    with torch.random.fork_rng():
        model.learn(total_timesteps=96)
    buf = model.rollout_buffer
    obs, actions, adv = (
        torch.as_tensor(a, dtype=torch.float32) for a in (buf.observations, buf.actions, buf.advantages)
    )
    return before, model.policy.state_dict(), (obs.reshape(-1, 4), actions.reshape(-1, 3), adv.reshape(-1))


def _ours_from(state: dict[str, torch.Tensor]) -> GaussianPolicy:
    policy = GaussianPolicy(4, 3, (8, 8), _gen())
    names = ["mlp_extractor.policy_net.0", "mlp_extractor.policy_net.2", "action_net"]
    with torch.no_grad():
        for layer, name in zip((policy.net[0], policy.net[2], policy.net[4]), names, strict=True):
            layer.weight.copy_(state[f"{name}.weight"])
            layer.bias.copy_(state[f"{name}.bias"])
        policy.log_std.copy_(state["log_std"])
    return policy


@pytest.mark.parametrize("translate", [True, False])
def test_step_equals_sb3_contrib_with_its_kl_averaged_over_action_dimensions(translate):
    """sb3-contrib's KL of a diagonal Gaussian is a mean over action dimensions too: with target_kl and
    cg_damping divided by d (``sb3_trpo_trust_region``) its update is ours; passed as they are it is not."""
    space = _ToyControl.action_space
    region = sb3_trpo_trust_region(0.01, 0.1, space) if translate else {"target_kl": 0.01, "cg_damping": 0.1}
    before, after, (obs, actions, adv) = _sb3_one_update(region)
    ours = _ours_from(before)
    trpo_update(ours, obs, actions, (adv - adv.mean()) / (adv.std() + 1e-8), max_kl=0.01, cg_iters=15, damping=0.1)
    step_ours = flat_params(ours) - flat_params(_ours_from(before))
    step_sb3 = flat_params(_ours_from(after)) - flat_params(_ours_from(before))
    gap = float((step_ours - step_sb3).norm() / step_sb3.norm())
    if translate:
        assert gap < 1e-4, gap  # sb3-contrib starts CG at 1e-4 noise instead of 0: measured 9e-7
    else:
        assert gap > 0.2, gap  # 3x the trust region, 3x the relative damping: measured 0.34


def test_sb3_trust_region_divides_by_the_action_dimensions():

    box = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
    assert sb3_trpo_trust_region(0.01, 0.1, box) == pytest.approx({"target_kl": 0.01 / 6, "cg_damping": 0.1 / 6})
    assert sb3_trpo_trust_region(0.02, 0.1, gym.spaces.Discrete(3)) == {"target_kl": 0.02, "cg_damping": 0.1}
    with pytest.raises(TypeError, match="action_space"):
        sb3_trpo_trust_region(0.01, 0.1, 6)
    with pytest.raises(ValueError, match="max_kl"):
        sb3_trpo_trust_region(0.0, 0.1, box)
