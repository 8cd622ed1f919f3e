"""Reinforcement learning, following Shiyu Zhao's *Mathematical Foundations of Reinforcement Learning*:
model-based to model-free, tabular first.

* :mod:`shiyan.rl.gridworld` -- the book's grid world (a ``gymnasium.Env``, any layout, continuing or
  episodic) and :class:`~shiyan.rl.gridworld.TabularMDP`, a finite MDP given by arrays ``P[s, a, s']``
  and ``R[s, a]``;
* :mod:`shiyan.rl.bellman` -- policy evaluation (closed form and iterative), value iteration, policy
  iteration, truncated policy iteration, epsilon-greedy policy iteration;
* :mod:`shiyan.rl.stochastic_approximation` -- incremental mean, Robbins--Monro, SGD;
* :mod:`shiyan.rl.tabular` -- MC basic, MC exploring starts, MC epsilon-greedy, TD(0), Sarsa, expected
  Sarsa, n-step Sarsa, Q-learning (on- and off-policy);
* :mod:`shiyan.rl.plotting` -- the book's value grids and policy arrows on a matplotlib ``Axes``.

Import the submodules directly (``from shiyan.rl import bellman``).
"""

__all__ = ["bellman", "gridworld", "plotting", "stochastic_approximation", "tabular"]
