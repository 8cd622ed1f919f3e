r"""Adam and AdamW: the same adaptive step, two ways to decay the weights.

Symbols (Kingma & Ba 2015; Loshchilov & Hutter 2019): parameters $\theta$, learning rate $\eta$
(``lr``), moment decay rates $\beta_1, \beta_2$ (``betas``), $\epsilon$ (``eps``), weight-decay
coefficient $\lambda$ (``weight_decay``), step counter $t = 1, 2, \dots$; squares, square roots
and divisions are elementwise.

Side by side, one step from $\theta_{t-1}$ with loss gradient $\nabla f_t = \nabla f(\theta_{t-1})$::

    Adam with L2 (Adam(weight_decay=λ))        AdamW (AdamW(weight_decay=λ))
    ---------------------------------------    ----------------------------------------
    g_t = ∇f_t + λ θ_{t-1}                      g_t = ∇f_t
                                                θ_{t-1} ← (1 − ηλ) θ_{t-1}
    m_t = β1 m_{t-1} + (1 − β1) g_t             same
    v_t = β2 v_{t-1} + (1 − β2) g_t²            same
    m̂_t = m_t / (1 − β1^t)                      same
    v̂_t = v_t / (1 − β2^t)                      same
    θ_t = θ_{t-1} − η m̂_t / (√v̂_t + ε)          same

In symbols: Adam + L2 uses $g_t = \nabla f_t + \lambda\theta_{t-1}$ inside the moments; AdamW uses
$g_t = \nabla f_t$ and shrinks $\theta_{t-1} \leftarrow (1-\eta\lambda)\theta_{t-1}$ first; both then take
$\theta_t = \theta_{t-1} - \eta\,\hat m_t/(\sqrt{\hat v_t}+\epsilon)$.

In Adam the decay $\lambda\theta$ is part of $g_t$, so it is divided by $\sqrt{\hat v_t}+\epsilon$
like the rest of the gradient: a weight whose gradients are large (large $\hat v$) is decayed by
roughly $\eta\lambda/\sqrt{\hat v_t}$ per step, one with small gradients much more. It also
enters $v_t$ and so changes the step size of the loss gradient. AdamW applies
$\theta \leftarrow (1-\eta\lambda)\theta$ outside the moments: every weight shrinks by the same
factor, whatever its gradient history. That is "decoupled" weight decay; with plain SGD the two
coincide, with an adaptive preconditioner they do not.

Implementation notes (differences from the papers, all shared with ``torch.optim``):

* the decay factor is $\eta\lambda$; the AdamW paper writes $\eta_t\lambda$ with $\eta_t$ a schedule
  multiplier that does not include the base learning rate $\alpha$.
* $\epsilon$ is added to the bias-corrected $\sqrt{\hat v_t}$ (Algorithm 1 of the Adam paper).
* ``amsgrad=True`` (Reddi et al. 2018) keeps $v^{\max}_t = \max(v^{\max}_{t-1}, v_t)$ of the
  *uncorrected* $v_t$ and uses $\sqrt{v^{\max}_t/(1-\beta_2^t)}$ in the denominator; the paper has
  no bias correction.
* ``maximize=True`` uses $-\nabla f_t$ (gradient ascent); the decay still pulls towards 0.

The update performs the same floating-point operations, in the same order, as torch's single-tensor
(``foreach=False``) implementation, so the two agree bit for bit in float32 and float64. The state
of each parameter uses torch's keys (``step``, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``), so a state dict loads into ``torch.optim.Adam``/``AdamW`` and back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["Adam", "AdamW"]


def _check_hyperparameters(lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    def real(value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value}")
        return float(value)

    if real(lr, "lr") < 0:
        raise ValueError(f"lr must be >= 0; got {lr}")
    if real(eps, "eps") < 0:
        raise ValueError(f"eps must be >= 0; got {eps}")
    if real(weight_decay, "weight_decay") < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay}")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}")
    for i, b in enumerate(betas):
        if not 0.0 <= real(b, f"betas[{i}]") < 1.0:
            raise ValueError(f"betas[{i}] must be in [0, 1); got {b}")


class _AdamBase(torch.optim.Optimizer):
    """The shared Adam step; subclasses choose where the weight decay goes."""

    decoupled: bool = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        _check_hyperparameters(lr, betas, eps, weight_decay)
        defaults = {
            "lr": float(lr),
            "betas": (float(betas[0]), float(betas[1])),
            "eps": float(eps),
            "weight_decay": float(weight_decay),
            "amsgrad": bool(amsgrad),
            "maximize": bool(maximize),
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _check_hyperparameters(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _state_for(self, p: Tensor, amsgrad: bool) -> dict[str, Tensor]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # m
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # v
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        elif amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, eps, lam = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            amsgrad, maximize = group["amsgrad"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise TypeError("Adam does not support sparse gradients")
                if p.is_complex():
                    raise TypeError("this Adam supports real parameters only")
                grad = -p.grad if maximize else p.grad  # ∇f (or -∇f to ascend)
                state = self._state_for(p, amsgrad)
                state["step"] += 1
                t = state["step"].item()

                if lam != 0.0:
                    if self.decoupled:
                        p.mul_(1.0 - lr * lam)  # AdamW: θ ← (1 − ηλ) θ
                    else:
                        grad = grad.add(p, alpha=lam)  # Adam + L2: g ← ∇f + λθ

                m, v = state["exp_avg"], state["exp_avg_sq"]
                # m_t = β1 m + (1 − β1) g, written as m + (1 − β1)(g − m): the same rounding as torch.optim
                m.lerp_(grad, 1.0 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)  # v_t = β2 v + (1 − β2) g²

                if amsgrad:
                    v_max = state["max_exp_avg_sq"]
                    torch.maximum(v_max, v, out=v_max)  # v_max = max(v_max, v_t)
                    v = v_max

                bias1 = 1.0 - beta1**t  # 1 − β1^t
                bias2 = 1.0 - beta2**t  # 1 − β2^t
                denom = (v.sqrt() / bias2**0.5).add_(eps)  # √v̂_t + ε
                p.addcdiv_(m, denom, value=-lr / bias1)  # θ ← θ − η m̂_t / (√v̂_t + ε)
        return loss


class Adam(_AdamBase):
    r"""Adam; ``weight_decay`` is an L2 penalty added to the gradient, $g \leftarrow \nabla f + \lambda\theta$.

    Args:
        params: parameters or parameter groups.
        lr: $\eta$. betas: $(\beta_1, \beta_2)$. eps: $\epsilon$.
        weight_decay: $\lambda$ of the L2 term (default 0).
        amsgrad: use the running maximum of $v_t$.
        maximize: ascend the objective instead of descending.
    """

    decoupled = False


class AdamW(_AdamBase):
    r"""AdamW; ``weight_decay`` is decoupled, $\theta \leftarrow (1-\eta\lambda)\theta$ before the Adam step.

    Same arguments as :class:`Adam`; the default ``weight_decay`` is 0.01, as in torch.
    """

    decoupled = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
