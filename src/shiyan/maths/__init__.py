"""Mathematical foundations: small, exact, vectorised building blocks.

* :mod:`shiyan.maths.random_walk` -- the 1-D random walk through generating functions: the law of
  the position, returns to the origin, first passages, Monte Carlo helpers.
* :mod:`shiyan.maths.quadratic` -- quadratic forms $\\mathbf x^\\top A\\mathbf x + \\mathbf b^\\top\\mathbf x + c$:
  stationary point, definiteness by eigenvalues (Jacobi rotations) and by Sylvester's minors.
* :mod:`shiyan.maths.directional` -- directional derivatives by closed-form gradients, central
  differences and forward-mode autograd; steepest ascent.

Import the submodules directly (``from shiyan.maths import random_walk``); this package does not
import them eagerly, so using one does not pay for the others (``directional`` imports torch).
"""

__all__ = ["directional", "quadratic", "random_walk"]
