"""Ten-seed comparison of our TRPO and sb3-contrib's on HalfCheetah-v5 (the table in the TRPO post).

Both sides take the same step (``shiyan.rl.reference.sb3_trpo_trust_region``), use the topic's full-profile
settings and are scored on the same greedy evaluation episodes. One line per seed: side, seed, seconds, return.
Run one process per side so each has a core of its own, e.g.

    python scripts/trpo_halfcheetah_seeds.py ours --seeds 10 --max-kl 0.06 --damping 0.6
    python scripts/trpo_halfcheetah_seeds.py sb3 --seeds 10 --max-kl 0.06 --damping 0.6
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from shiyan.rl import trpo
from shiyan.rl.reference import evaluate_on, model_policy
from shiyan.topics import trpo as topic


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("side", choices=["ours", "sb3"])
    p.add_argument("--seeds", type=int, default=10, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--max-kl", type=float, default=topic.Config.mujoco_max_kl)
    p.add_argument("--damping", type=float, default=topic.Config.mujoco_damping)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = dataclasses.replace(topic.Config.full(), mujoco_max_kl=args.max_kl, mujoco_damping=args.damping)  # validated
    st = topic._mujoco(cfg, args.steps)
    tcfg = topic._trpo_cfg(cfg, st)
    eval_seed = 10_000 + cfg.seed
    returns = []
    for s in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        if args.side == "ours":
            out = trpo.train_trpo(st.env_id, tcfg, s, generator=torch.Generator().manual_seed(1000 + s))
            ret = topic._eval_ours(st.env_id, out.policy, cfg.eval_episodes, eval_seed)
        else:
            model, venv = topic._sb3_model(cfg, st, s)
            model.learn(total_timesteps=tcfg.total_steps)
            venv.close()
            ret = float(evaluate_on(st.env_id, cfg.eval_episodes, eval_seed, model_policy(model)).mean())
        returns.append(ret)
        print(args.side, s, f"{time.perf_counter() - t0:.0f}s", round(ret, 1), flush=True)
    spread = f", std {np.std(returns, ddof=1):.1f}" if len(returns) > 1 else ""
    print(f"{args.side}: mean {np.mean(returns):.1f}{spread} over {args.seeds} seeds")


if __name__ == "__main__":
    main()
