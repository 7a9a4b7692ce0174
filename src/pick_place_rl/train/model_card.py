"""Publish a training run into ``models/<name>/``: the actor, its curve and a model card.

``python -m pick_place_rl.train.model_card runs/pickplace_s0 models/fetch_pick_and_place
--command "pick-place-rl train ddpg-her ..."`` re-evaluates the exported actor through
:class:`~pick_place_rl.core.policy.GoalPolicy` (the policy node's loader) on fixed seeds, so the
success in the card is that of the file being shipped, not of the trainer's in-memory agent.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import sys

import gymnasium as gym

from pick_place_rl.core.checkpoint import atomic_write_json
from pick_place_rl.core.policy import GoalPolicy
from pick_place_rl.sim.registry import make_env
from pick_place_rl.train.ddpg_her import evaluate


def evaluate_actor(path: Path, env_id: str, episodes: int, first_seed: int,
                   n_envs: int = 10) -> dict[str, float]:
    """Deterministic success of an actor file on episodes seeded ``first_seed + i``."""
    policy = GoalPolicy.from_checkpoint(path)
    env = gym.vector.SyncVectorEnv([lambda: make_env(env_id) for _ in range(n_envs)])
    horizon = int(env.envs[0].spec.max_episode_steps)
    return evaluate(env, horizon, policy, episodes, first_seed)


def publish(run: Path, dest: Path, command: str, episodes: int = 100) -> dict:
    metrics = json.loads((run / 'metrics.json').read_text())
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / 'actor.pt', dest / 'actor.pt')
    shutil.copyfile(run / 'curve.png', dest / 'curve.png')
    seed = metrics['config']['eval_seed']
    result = evaluate_actor(dest / 'actor.pt', metrics['env_id'], episodes, seed)
    card = {'env_id': metrics['env_id'], 'algorithm': 'DDPG + HER (future, k=4)',
            'command': command, 'seed': metrics['seed'], 'wall_clock_s': metrics['wall_s'],
            'env_steps': metrics['env_steps'], 'epochs': metrics['epochs'],
            'time_to_success_s': metrics['time_to'],
            'eval': {'episodes': episodes, 'first_seed': seed, **result},
            'config': metrics['config'],
            'curve': [{k: h[k] for k in ('epoch', 'env_steps', 'wall_s', 'success_rate')}
                      for h in metrics['history']]}
    atomic_write_json(dest / 'metrics.json', card)
    (dest / 'README.md').write_text(render_card(card))
    return card


def render_card(card: dict) -> str:
    e = card['eval']
    net = f"{card['config']['layers']}x{card['config']['hidden']}"
    t05, t09 = (card['time_to_success_s'].get(k) for k in ('0.5', '0.9'))
    return f"""# {card['env_id']} actor (DDPG + HER)

| | |
|---|---|
| task | `{card['env_id']}` (gymnasium-robotics) |
| algorithm | {card['algorithm']}, actor/critic {net} |
| training command | `{card['command']}` |
| seed | {card['seed']} |
| wall clock | {card['wall_clock_s'] / 60:.1f} min |
| env steps | {card['env_steps']:,} ({card['epochs']} epochs) |
| time to 0.5 / 0.9 success | {t05} s / {t09} s |
| success, {e['episodes']} episodes (seeds {e['first_seed']}+i) | **{e['success_rate']:.2f}** |

Files: `actor.pt` (actor weights + observation/goal normalizers; load with
`pick_place_rl.core.policy.GoalPolicy.from_checkpoint`), `curve.png` (evaluation success vs wall
clock), `metrics.json` (this card, the full config and the curve).

The success above is measured on the shipped file with the policy node's loader
(`python -m pick_place_rl.train.model_card`), not copied from the training log.

![training curve](curve.png)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('run', type=Path, help='training output folder (has metrics.json)')
    parser.add_argument('dest', type=Path, help='models/<name> folder to write')
    parser.add_argument('--command', required=True, help='the command that trained the run')
    parser.add_argument('--episodes', type=int, default=100)
    args = parser.parse_args(argv)
    card = publish(args.run, args.dest, args.command, args.episodes)
    print(json.dumps({'dest': str(args.dest), **card['eval']}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
