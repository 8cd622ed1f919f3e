"""Optimisers and mixed-precision training mechanics.

:class:`Adam` and :class:`AdamW` (``torch.optim.Optimizer`` subclasses, see
:mod:`shiyan.optim.adam`), and the dynamic :class:`LossScaler` with fp32
:class:`MasterWeights` (see :mod:`shiyan.optim.loss_scaler`).
"""

from shiyan.optim.adam import Adam, AdamW
from shiyan.optim.loss_scaler import LossScaler, MasterWeights

__all__ = ["Adam", "AdamW", "LossScaler", "MasterWeights"]
