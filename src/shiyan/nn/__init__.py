"""Shared neural-network building blocks: activations and feed-forward blocks, initialisers,
normalisation layers and a floating-point format explorer.

Submodules: :mod:`shiyan.nn.activations`, :mod:`shiyan.nn.init`, :mod:`shiyan.nn.norms`,
:mod:`shiyan.nn.floats`. Each defines ``__all__``; this package re-exports the public names of
the layer modules (``init`` and ``floats`` stay namespaced: ``shiyan.nn.init.xavier_uniform_``).
One line per submodule; new modules append theirs.
"""

from shiyan.nn import floats, init  # noqa: F401
from shiyan.nn.activations import *  # noqa: F401, F403
from shiyan.nn.norms import *  # noqa: F401, F403
