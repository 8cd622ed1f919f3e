"""Shared neural-network building blocks: activations and feed-forward blocks, initialisers,
normalisation layers, a floating-point format explorer, receptive fields, upsampling, gradient
checkpointing, differentiable metrics, recurrent networks and the one Transformer LM.

Submodules: :mod:`shiyan.nn.activations`, :mod:`shiyan.nn.init`, :mod:`shiyan.nn.norms`,
:mod:`shiyan.nn.floats`. Each defines ``__all__``; this package re-exports the public names of
the layer modules (``init`` and ``floats`` stay namespaced: ``shiyan.nn.init.xavier_uniform_``).
One line per submodule; new modules append theirs.
"""

from shiyan.nn import floats, init  # noqa: F401
from shiyan.nn.activations import *  # noqa: F401, F403
from shiyan.nn.checkpointing import *  # noqa: F401, F403
from shiyan.nn.gau import *  # noqa: F401, F403
from shiyan.nn.lm import KVCache, LMConfig, TransformerLM  # noqa: F401
from shiyan.nn.metrics import *  # noqa: F401, F403
from shiyan.nn.moe import *  # noqa: F401, F403
from shiyan.nn.norms import *  # noqa: F401, F403
from shiyan.nn.receptive_field import *  # noqa: F401, F403
from shiyan.nn.rnn import Recurrent, gru_cell, hidden_gradient_norms, lstm_cell, rnn_cell  # noqa: F401
from shiyan.nn.upsampling import *  # noqa: F401, F403
