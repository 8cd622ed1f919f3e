r"""The grid world of Shiyu Zhao's *Mathematical Foundations of Reinforcement Learning*, and the
finite Markov decision process (MDP) it defines.

**The MDP.** A finite MDP has states $s \in \mathcal S = \{0, \dots, |\mathcal S| - 1\}$, actions
$a \in \mathcal A = \{0, \dots, |\mathcal A| - 1\}$, a transition model $p(s' \mid s, a)$ and a reward.
:class:`TabularMDP` stores the model as two arrays,

$$P[s, a, s'] = p(s' \mid s, a), \qquad R[s, a] = \mathbb E[R_{t+1} \mid S_t = s, A_t = a],$$

which is all the model-based methods of :mod:`shiyan.rl.bellman` need. Rewards here are a
deterministic function of $(s, a)$, so the expected reward is also the reward a sample returns.
A *terminal* state (the target of the episodic variant) has no outgoing transitions: its rows of
$P$ and $R$ are zero, so every solver gives it the value $0$ without a special case.

**The grid.** An ``n_rows`` $\times$ ``n_cols`` board; state $s = \text{row} \cdot n_\text{cols} + \text{col}$
counts cells row by row from the top-left corner, the book's $s_1, s_2, \dots$ (shifted to start at 0).
Cells are ``(row, col)`` pairs **counted from 0** in this module; the book counts from 1, so its
target $(4, 3)$ is ``(3, 2)`` here and its forbidden cells $(2,2), (2,3), (3,3), (4,2), (4,4), (5,2)$
are :data:`BOOK_FORBIDDEN`. The five actions are the book's $a_1, \dots, a_5$:

====  ======  ===========
code  action  move
====  ======  ===========
0     up      row $-1$
1     right   col $+1$
2     down    row $+1$
3     left    col $-1$
4     stay    none
====  ======  ===========

Rewards follow the book (Chapter 1):

* a move that would leave the board keeps the agent where it is and pays $r_\text{boundary}$;
* otherwise the reward is that of the cell the agent lands in (after "stay", the cell it is in):
  $r_\text{target}$ on the target, $r_\text{forbidden}$ on a forbidden cell, $r_\text{other}$ elsewhere.

So staying on the target keeps paying $r_\text{target}$, and forbidden cells can be entered (at a
price): the target is **not** absorbing in the book's Chapters 2--4, and the optimal state value of
the target is $r_\text{target} / (1 - \gamma)$. The *episodic* variant (``episodic=True``, the
book's Chapter 7 examples) ends the episode on entering the target, which becomes a terminal state.

:class:`GridWorld` is a :class:`gymnasium.Env` (``reset(seed=...)``, ``step(a)`` returning
``(obs, reward, terminated, truncated, info)``, observations are state indices) and exposes its
model as :attr:`GridWorld.mdp`. The model-free learners of :mod:`shiyan.rl.tabular` only draw
samples from the model, through :meth:`TabularMDP.sampler` (or :meth:`TabularMDP.step`) with an
explicit generator.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = [
    "ACTION_DELTAS",
    "ACTION_NAMES",
    "BOOK_FORBIDDEN",
    "BOOK_TARGET",
    "GridWorld",
    "TabularMDP",
    "check_policy",
]

ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left", "stay")
"""Names of the actions $a_1, \\dots, a_5$ (codes 0..4)."""
ACTION_DELTAS: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1), (0, 0))
"""(d_row, d_col) of each action."""
BOOK_TARGET: tuple[int, int] = (3, 2)
"""The book's target cell (row 4, column 3 counted from 1)."""
BOOK_FORBIDDEN: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2), (3, 1), (3, 3), (4, 1))
"""The book's forbidden cells (2,2), (2,3), (3,3), (4,2), (4,4), (5,2) counted from 1."""

_ROW_SUM_TOL = 1e-9


# -- the finite MDP ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
    r"""A finite MDP given by its model: ``P[s, a, s']`` $= p(s' \mid s, a)$, ``R[s, a]`` the
    (deterministic) reward of taking $a$ in $s$, and ``terminal[s]`` marking states that end an
    episode (zero rows of ``P`` and ``R``).

    :meth:`step` samples one transition with an explicit generator; it is what model-free methods
    see of the MDP.
    """

    P: np.ndarray
    """Transition probabilities, shape (S, A, S)."""
    R: np.ndarray
    """Rewards, shape (S, A)."""
    terminal: np.ndarray
    """Boolean mask of terminal states, shape (S,)."""

    def __post_init__(self) -> None:
        P = np.asarray(self.P, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        terminal = np.asarray(self.terminal)
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"P must have shape (S, A, S) with S, A >= 1; got {P.shape}")
        n_s, n_a = P.shape[:2]
        if R.shape != (n_s, n_a):
            raise ValueError(f"R must have shape (S, A) = {(n_s, n_a)}; got {R.shape}")
        if terminal.shape != (n_s,) or terminal.dtype != np.bool_:
            raise ValueError(
                f"terminal must be a boolean array of shape ({n_s},); got {terminal.dtype} {terminal.shape}"
            )
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(R))):
            raise ValueError("P and R must be finite")
        if np.any(P < 0):
            raise ValueError("P must be non-negative")
        sums = P.sum(axis=2)  # (S, A)
        expected = np.where(terminal[:, None], 0.0, 1.0)
        if np.any(np.abs(sums - expected) > _ROW_SUM_TOL):
            raise ValueError("P[s, a, :] must sum to 1 for non-terminal s and to 0 for terminal s")
        if np.any(R[terminal] != 0):
            raise ValueError("R must be 0 in terminal states")
        if np.all(terminal):
            raise ValueError("terminal must leave at least one non-terminal state")
        for name, arr in (("P", P), ("R", R), ("terminal", terminal)):
            arr = arr.copy()
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        # Sampling tables: the successor of a deterministic (s, a), or -1 when p(. | s, a) is spread.
        det = np.isclose(P.max(axis=2), 1.0) & ~terminal[:, None]
        succ = np.where(det, P.argmax(axis=2), -1)
        object.__setattr__(self, "_successor", succ.tolist())
        object.__setattr__(self, "_cdf", np.cumsum(P, axis=2).tolist())
        object.__setattr__(self, "_rewards", R.tolist())
        object.__setattr__(self, "_terminal", terminal.tolist())
        object.__setattr__(self, "_deterministic", bool(np.all(succ[~terminal] >= 0)))

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.P.shape[1])

    @property
    def is_deterministic(self) -> bool:
        """Every non-terminal (s, a) has a single successor."""
        return self._deterministic

    @property
    def nonterminal_states(self) -> np.ndarray:
        return np.flatnonzero(~self.terminal)

    def sampler(self, rng: np.random.Generator | None = None) -> Callable[[int, int], tuple[int, float, bool]]:
        """A fast ``step(s, a) -> (s', r, terminated)`` bound to ``rng``, without argument checks
        (for the inner loops of the learners; the caller keeps ``s`` non-terminal)."""
        successor, rewards, terminal = self._successor, self._rewards, self._terminal
        if self.is_deterministic:

            def step_deterministic(s: int, a: int) -> tuple[int, float, bool]:
                nxt = successor[s][a]
                return nxt, rewards[s][a], terminal[nxt]

            return step_deterministic
        if rng is None:
            raise ValueError("rng is required to sample a stochastic MDP")
        cdf = self._cdf
        last = self.n_states - 1

        def step_stochastic(s: int, a: int) -> tuple[int, float, bool]:
            nxt = successor[s][a]
            if nxt < 0:
                nxt = min(bisect.bisect_right(cdf[s][a], rng.random()), last)
            return nxt, rewards[s][a], terminal[nxt]

        return step_stochastic

    def step(self, s: int, a: int, rng: np.random.Generator | None = None) -> tuple[int, float, bool]:
        r"""Sample $s' \sim p(\cdot \mid s, a)$; return $(s', r, s' \text{ is terminal})$.

        ``rng`` is only drawn from when $p(\cdot \mid s, a)$ is not a point mass (a deterministic
        MDP such as the grid world needs none).
        """
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < self.n_states:
            raise ValueError(f"s must be a state index in [0, {self.n_states}); got {s!r}")
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < self.n_actions:
            raise ValueError(f"a must be an action index in [0, {self.n_actions}); got {a!r}")
        if self._terminal[s]:
            raise ValueError(f"s = {s} is terminal: no action can be taken there")
        nxt = self._successor[s][a]
        if nxt < 0:
            if rng is None:
                raise ValueError("rng is required to sample a stochastic transition")
            nxt = min(bisect.bisect_right(self._cdf[s][a], rng.random()), self.n_states - 1)
        return int(nxt), self._rewards[s][a], self._terminal[nxt]


def check_policy(pi: np.ndarray, n_states: int, n_actions: int, name: str = "policy") -> np.ndarray:
    r"""Return ``pi`` as a float array after checking it is a policy $\pi(a \mid s)$ of shape (S, A)."""
    arr = np.asarray(pi, dtype=np.float64)
    if arr.shape != (n_states, n_actions):
        raise ValueError(f"{name} must have shape (S, A) = {(n_states, n_actions)}; got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    if np.any(np.abs(arr.sum(axis=1) - 1.0) > 1e-8):
        raise ValueError(f"every row of {name} must sum to 1")
    return arr


# -- the grid world ------------------------------------------------------------------------------
def _check_cell(cell: Any, n_rows: int, n_cols: int, name: str) -> tuple[int, int]:
    try:
        r, c = (int(x) for x in cell)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (row, col) pair of integers; got {cell!r}") from None
    if not (0 <= r < n_rows and 0 <= c < n_cols):
        raise ValueError(f"{name} = {cell!r} lies outside the {n_rows} x {n_cols} grid (cells count from 0)")
    return r, c


def _check_reward(x: Any, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not np.isfinite(x):
        raise ValueError(f"{name} must be a finite number; got {x!r}")
    return float(x)


class GridWorld(gym.Env):
    r"""The book's grid world as a gymnasium environment (see the module docstring for the rules).

    Parameters
    ----------
    n_rows, n_cols:
        Board size (5 x 5 in the book).
    target:
        The target cell ``(row, col)``, counted from 0.
    forbidden:
        Forbidden cells, counted from 0 (must not contain the target).
    r_boundary, r_forbidden, r_target, r_other:
        Rewards for bumping into the boundary, landing in a forbidden cell, landing on the target,
        and any other move.
    episodic:
        ``True``: entering the target ends the episode (terminal state, value 0). ``False`` (the
        book's Chapters 2--4): the target is an ordinary state that pays $r_\text{target}$ for staying.
    start:
        Start cell of every episode; ``None`` draws it uniformly from the non-terminal cells.
        ``reset(options={"state": s})`` overrides it for one episode.
    max_episode_steps:
        Episodes are truncated after this many steps (``None``: never).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        n_rows: int = 5,
        n_cols: int = 5,
        target: tuple[int, int] = BOOK_TARGET,
        forbidden: Iterable[tuple[int, int]] = BOOK_FORBIDDEN,
        *,
        r_boundary: float = -1.0,
        r_forbidden: float = -1.0,
        r_target: float = 1.0,
        r_other: float = 0.0,
        episodic: bool = False,
        start: tuple[int, int] | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        for name, n in (("n_rows", n_rows), ("n_cols", n_cols)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive integer; got {n!r}")
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        self.target = _check_cell(target, self.n_rows, self.n_cols, "target")
        self.forbidden = tuple(sorted({_check_cell(c, self.n_rows, self.n_cols, "forbidden cell") for c in forbidden}))
        if self.target in self.forbidden:
            raise ValueError(f"target {self.target} is also listed as forbidden")
        self.r_boundary = _check_reward(r_boundary, "r_boundary")
        self.r_forbidden = _check_reward(r_forbidden, "r_forbidden")
        self.r_target = _check_reward(r_target, "r_target")
        self.r_other = _check_reward(r_other, "r_other")
        self.episodic = bool(episodic)
        self.start = None if start is None else _check_cell(start, self.n_rows, self.n_cols, "start")
        if self.episodic and self.start == self.target:
            raise ValueError("start must differ from the target in the episodic variant")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
        ):
            raise ValueError(f"max_episode_steps must be a positive integer or None; got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi'; got {render_mode!r}")
        self.render_mode = render_mode

        self.mdp = self._build_model()
        self.observation_space = gym.spaces.Discrete(self.n_states)
        self.action_space = gym.spaces.Discrete(len(ACTION_NAMES))
        self._state: int | None = None
        self._t = 0

    # -- geometry ---------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def n_actions(self) -> int:
        return len(ACTION_NAMES)

    def state_of(self, cell: tuple[int, int]) -> int:
        """State index of a cell (counted from 0)."""
        r, c = _check_cell(cell, self.n_rows, self.n_cols, "cell")
        return r * self.n_cols + c

    def cell_of(self, s: int) -> tuple[int, int]:
        """Cell (row, col) of a state index."""
        if not 0 <= int(s) < self.n_states:
            raise ValueError(f"s must lie in [0, {self.n_states}); got {s!r}")
        return divmod(int(s), self.n_cols)

    def as_grid(self, values: np.ndarray) -> np.ndarray:
        """Reshape per-state values of shape (S, ...) to (n_rows, n_cols, ...)."""
        arr = np.asarray(values)
        if arr.shape[:1] != (self.n_states,):
            raise ValueError(f"values must have {self.n_states} states on axis 0; got shape {arr.shape}")
        return arr.reshape(self.n_rows, self.n_cols, *arr.shape[1:])

    @property
    def target_state(self) -> int:
        return self.state_of(self.target)

    @property
    def forbidden_states(self) -> tuple[int, ...]:
        return tuple(self.state_of(c) for c in self.forbidden)

    def _landing_reward(self, cell: tuple[int, int]) -> float:
        if cell == self.target:
            return self.r_target
        if cell in self.forbidden:
            return self.r_forbidden
        return self.r_other

    def _build_model(self) -> TabularMDP:
        n_s, n_a = self.n_states, len(ACTION_NAMES)
        P = np.zeros((n_s, n_a, n_s))
        R = np.zeros((n_s, n_a))
        terminal = np.zeros(n_s, dtype=bool)
        if self.episodic:
            terminal[self.state_of(self.target)] = True
        for s in range(n_s):
            if terminal[s]:
                continue
            r, c = divmod(s, self.n_cols)
            for a, (dr, dc) in enumerate(ACTION_DELTAS):
                nr, nc = r + dr, c + dc
                if 0 <= nr < self.n_rows and 0 <= nc < self.n_cols:
                    P[s, a, nr * self.n_cols + nc] = 1.0
                    R[s, a] = self._landing_reward((nr, nc))
                else:  # bump: stay put, pay the boundary reward
                    P[s, a, s] = 1.0
                    R[s, a] = self.r_boundary
        return TabularMDP(P, R, terminal)

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        options = options or {}
        if "state" in options:
            s = int(options["state"])
            if not 0 <= s < self.n_states or self.mdp.terminal[s]:
                raise ValueError(f"options['state'] must be a non-terminal state in [0, {self.n_states}); got {s}")
        elif self.start is not None:
            s = self.state_of(self.start)
        else:
            s = int(self.np_random.choice(self.mdp.nonterminal_states))
        self._state, self._t = s, 0
        return s, {"cell": self.cell_of(s)}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be one of 0..{self.n_actions - 1}; got {action!r}")
        s, r, terminated = self.mdp.step(self._state, int(action), self.np_random)
        self._state = s
        self._t += 1
        truncated = self.max_episode_steps is not None and self._t >= self.max_episode_steps and not terminated
        if terminated:
            self._state = None  # the episode is over: the next step needs a reset
        return s, float(r), bool(terminated), bool(truncated), {"cell": self.cell_of(s)}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        rows = []
        for r in range(self.n_rows):
            line = []
            for c in range(self.n_cols):
                s = r * self.n_cols + c
                mark = "T" if (r, c) == self.target else ("X" if (r, c) in self.forbidden else ".")
                line.append(f"[{mark}]" if s == self._state else f" {mark} ")
            rows.append("".join(line))
        return "\n".join(rows)
