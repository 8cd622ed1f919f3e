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
* :mod:`shiyan.rl.plotting` -- the book's value grids and policy arrows on a matplotlib ``Axes``;
* :mod:`shiyan.rl.envs` -- seeded gymnasium vector environments (same-step autoreset), the grid world included;
* :mod:`shiyan.rl.collect` -- the rollout collector shared by every deep learner (true final observations
  on episode ends, policy extras, episode statistics);
* :mod:`shiyan.rl.buffer` -- the replay buffer (numpy ring, uniform sampling, terminated-only bootstrap mask);
* :mod:`shiyan.rl.advantages` -- n-step returns and GAE with terminated vs truncated handled;
* :mod:`shiyan.rl.approx` -- features, TD-linear, linear Sarsa / Q-learning, and the MLPs of the deep learners;
* :mod:`shiyan.rl.dqn` -- DQN (replay buffer, target network, epsilon schedule, Huber loss);
* :mod:`shiyan.rl.actor_critic` -- policy gradient, QAC, A2C, off-policy actor-critic, deterministic policy gradient.

Import the submodules directly (``from shiyan.rl import bellman``).
"""

__all__ = [
    "actor_critic",
    "advantages",
    "approx",
    "bellman",
    "buffer",
    "collect",
    "dqn",
    "envs",
    "gridworld",
    "plotting",
    "stochastic_approximation",
    "tabular",
]
