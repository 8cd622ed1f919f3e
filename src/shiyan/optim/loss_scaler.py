r"""Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training").

fp16 has 5 exponent bits: its smallest subnormal is $2^{-24} \approx 6\times10^{-8}$ and its
largest value 65504. Back-propagated gradients are often smaller than the first and are flushed
to zero ("underflow"). Since the chain rule is linear in the loss, multiplying the loss by $S$
multiplies every gradient by $S$ and shifts them into range; dividing the (fp32) gradients by
$S$ before the update gives back the true gradient. Too large an $S$ overflows to inf/NaN.

The dynamic rule picks $S$ on the fly. With growth factor $\gamma_+$ (``growth_factor``),
backoff factor $\gamma_-$ (``backoff_factor``) and interval $N$ (``growth_interval``), after each
iteration:

* if any gradient is inf or NaN: **skip** the optimiser step, $S \leftarrow \gamma_- S$ and reset
  the counter of good steps;
* else: take the step; after $N$ consecutive good steps, $S \leftarrow \gamma_+ S$ (if that is
  still finite) and reset the counter.

Use (the same four calls as ``torch.amp.GradScaler``, and usable under ``torch.autocast``)::

    scaler = LossScaler()
    with torch.autocast("cpu", dtype=torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()      # gradients of S * loss
    scaler.unscale_(optimizer)         # optional: true gradients now, e.g. to clip them
    scaler.step(optimizer)             # skipped when a gradient is inf/NaN
    scaler.update()                    # grow or back off S

Numerics follow torch so that the two agree bit for bit: $S$ is kept as a float32 value, the
inverse $1/S$ is computed in float64 and rounded to float32, and the gradients (which must not
be fp16: keep fp32 master weights, see :class:`MasterWeights`) are multiplied by it in place.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["LossScaler", "MasterWeights"]


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 value (inf beyond float32's range)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


class LossScaler:
    """Dynamic loss scaler: ``scale`` the loss, ``unscale_``/``step`` the optimiser, ``update`` S.

    Args:
        init_scale: starting $S$.
        growth_factor: $\\gamma_+ > 1$, applied after ``growth_interval`` good steps in a row.
        backoff_factor: $\\gamma_- \\in (0, 1)$, applied after a step with inf/NaN gradients.
        growth_interval: $N \\ge 1$.
        enabled: when False every method is a pass-through (``step`` just calls ``optimizer.step()``).
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        for name, value in (
            ("init_scale", init_scale),
            ("growth_factor", growth_factor),
            ("backoff_factor", backoff_factor),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number; got {value!r}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0; got {init_scale}")
        if not growth_factor > 1.0:
            raise ValueError(f"growth_factor must be > 1; got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor must be in (0, 1); got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"growth_interval must be an int >= 1; got {growth_interval!r}")
        self._enabled = bool(enabled)
        self._scale = _f32(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    # -- queries ------------------------------------------------------------------------------
    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        """Current $S$ (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_tracker(self) -> int:
        """Good steps since the last change of $S$."""
        return self._growth_tracker

    # -- the four calls -----------------------------------------------------------------------
    def scale(self, outputs: Tensor | Iterable[Tensor]) -> Tensor | Iterable[Tensor]:
        """Multiply a loss (or a list/tuple of tensors) by $S$."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * torch.tensor(self._scale, dtype=torch.float32, device=outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"outputs must be a Tensor or a list/tuple of Tensors; got {type(outputs).__name__}")

    def _state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _Stage.READY, "found_inf": False})

    @torch.no_grad()
    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by $S$ in place and record whether
        any of them is inf or NaN. At most once per optimiser between two ``update`` calls."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] is _Stage.UNSCALED:
            raise RuntimeError("unscale_() was already called on this optimizer since the last update()")
        if state["stage"] is _Stage.STEPPED:
            raise RuntimeError("unscale_() was called after step(); call update() first")
        inv_scale = _f32(1.0 / self._scale)  # 1/S in float64, rounded to float32
        found_inf = False
        for grad in _grads(optimizer):
            if grad.dtype == torch.float16:
                raise ValueError(
                    "optimizer holds fp16 gradients; keep fp32 master weights (see MasterWeights) "
                    "so that unscaling does not underflow"
                )
            if not bool(torch.isfinite(grad).all()):
                found_inf = True
            if inv_scale != 1.0:
                grad.mul_(inv_scale)
        state["found_inf"] = found_inf
        state["stage"] = _Stage.UNSCALED

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        """``unscale_`` (if not done yet), then ``optimizer.step()`` unless a gradient was inf/NaN.

        Returns what ``optimizer.step`` returns, or None when the step is skipped.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("closures are not supported with loss scaling")
        state = self._state(optimizer)
        if state["stage"] is _Stage.STEPPED:
            raise RuntimeError("step() was already called since the last update()")
        if state["stage"] is _Stage.READY:
            self.unscale_(optimizer)
        result = None
        if not state["found_inf"]:
            result = optimizer.step(*args, **kwargs)
        state["stage"] = _Stage.STEPPED
        return result

    def update(self, new_scale: float | None = None) -> None:
        """End of an iteration: back off or grow $S$ (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                new_scale = float(new_scale.item())
            if not (math.isfinite(new_scale) and new_scale > 0):
                raise ValueError(f"new_scale must be a finite positive number; got {new_scale}")
            self._scale = _f32(new_scale)
        else:
            if not self._per_optimizer:
                raise RuntimeError("update() needs at least one unscale_() or step() since the last update()")
            found_inf = any(s["found_inf"] for s in self._per_optimizer.values())
            if found_inf:
                self._scale = _f32(self._scale * self._backoff_factor)  # S ← γ₋ S
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = _f32(self._scale * self._growth_factor)  # S ← γ₊ S
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def found_inf(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether the last ``unscale_`` of ``optimizer`` saw an inf/NaN gradient."""
        return bool(self._state(optimizer)["found_inf"])

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Same keys as ``torch.amp.GradScaler.state_dict()`` (loadable by either)."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("the state dict is empty: it came from a disabled scaler")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict lacks {', '.join(sorted(missing))}")
        self._scale = _f32(float(state_dict["scale"]))
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


def _grads(optimizer: torch.optim.Optimizer) -> Iterator[Tensor]:
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                if p.grad.is_sparse:
                    raise TypeError("sparse gradients are not supported")
                yield p.grad


class MasterWeights:
    """FP32 master copies of a low-precision model's parameters.

    The model runs forward and backward in fp16/bf16; the optimiser updates fp32 copies, so that
    tiny updates $\\eta\\,\\Delta\\theta$ are not lost when added to $\\theta$ (in fp16, $1 + 2^{-12}$
    rounds back to 1). Each iteration::

        masters.copy_grads_()           # model .grad (low precision) -> master .grad (fp32)
        scaler.step(optimizer)          # optimizer built on masters.params
        masters.copy_params_()          # master values -> model parameters (rounded)
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model_params = [p for p in model.parameters() if p.requires_grad]
        self.params = [p.detach().to(torch.float32).clone().requires_grad_(True) for p in self.model_params]

    @torch.no_grad()
    def copy_grads_(self) -> None:
        """Master ``.grad`` = model ``.grad`` cast to fp32 (inf/NaN preserved); model grads cleared."""
        for master, p in zip(self.params, self.model_params):
            if p.grad is None:
                master.grad = None
                continue
            master.grad = p.grad.detach().to(torch.float32)
            p.grad = None

    @torch.no_grad()
    def copy_params_(self) -> None:
        """Model parameters = master values rounded to the model's dtype."""
        for master, p in zip(self.params, self.model_params):
            p.copy_(master)
