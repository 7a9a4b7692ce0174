"""A reference pick-and-place actor for benchmarking the ROS loop: the scripted controller, cloned.

The closed-loop benchmark compares success through ROS with the same actor's success in the
training env; that comparison says little while the DDPG+HER actor still fails nearly every
episode. This script gives a network that succeeds often, in the trainer's exact checkpoint
format (``GoalPolicy.from_checkpoint`` loads it, the node serves it): DAgger on
``train.policy_eval.scripted_pick_place`` in FetchPickAndPlace-v4 -- roll out the current
actor (the scripted controller in the first round), label every visited observation with the
scripted action, fit the actor (HER recipe: 3 x 256, tanh, normalizers) by MSE, repeat.

It is a benchmarking tool, not the shipped model: the model card of
``models/fetch_pick_and_place`` describes the DDPG+HER actor.

Run: ``python bench/reference_actor.py --out runs/reference_actor/actor.pt`` (about 2 min).
"""
from __future__ import annotations

import argparse
from pathlib import Path
import time

import numpy as np
import torch

from pick_place_rl.core.checkpoint import save_checkpoint
from pick_place_rl.core.networks import Actor
from pick_place_rl.core.normalizer import Normalizer
from pick_place_rl.core.policy import GoalPolicy, KIND
from pick_place_rl.core.preprocess import preprocess
from pick_place_rl.sim.registry import make_env
from pick_place_rl.train.policy_eval import gym_success, scripted_pick_place

OBS, GOAL, ACT, HIDDEN, LAYERS = 25, 3, 4, 256, 3


def rollouts(policy, n: int, seed: int, noise: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Observations and goals visited by ``policy`` (+ Gaussian action noise)."""
    env = make_env('FetchPickAndPlace-v4')
    obs_l, goal_l = [], []
    for i in range(n):
        o, _ = env.reset(seed=seed + i)
        for _ in range(50):
            obs_l.append(o['observation'])
            goal_l.append(o['desired_goal'])
            a = np.asarray(policy(o['observation'], o['desired_goal']), dtype=float)
            a = np.clip(a + noise * rng.normal(size=4), -1, 1)
            o, *_ = env.step(a)
    env.close()
    return np.array(obs_l), np.array(goal_l)


def fit(actor: Actor, obs_norm: Normalizer, goal_norm: Normalizer, obs: np.ndarray,
        goal: np.ndarray, steps: int, rng: np.random.Generator) -> float:
    labels = np.array([scripted_pick_place(o, g) for o, g in zip(obs, goal)], dtype=np.float32)
    x_all = torch.from_numpy(preprocess(obs, goal, obs_norm, goal_norm))
    y_all = torch.from_numpy(labels)
    optim = torch.optim.Adam(actor.parameters(), lr=1e-3)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x_all), 512))
        loss = torch.mean((actor(x_all[idx]) - y_all[idx]) ** 2)
        optim.zero_grad()
        loss.backward()
        optim.step()
    return float(loss.detach())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('runs/reference_actor/actor.pt'))
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--episodes', type=int, default=100, help='rollouts per round')
    parser.add_argument('--steps', type=int, default=3000, help='gradient steps per round')
    parser.add_argument('--seed', type=int, default=100_000, help='seeds used for training '
                        '(far from the benchmark seeds 0..99)')
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    actor = Actor(OBS + GOAL, ACT, HIDDEN, LAYERS)
    obs_norm, goal_norm = Normalizer(OBS), Normalizer(GOAL)
    data_o, data_g = [], []
    policy = scripted_pick_place
    t0 = time.monotonic()
    for r in range(args.rounds):
        o, g = rollouts(policy, args.episodes, args.seed + r * args.episodes,
                        0.3 if r == 0 else 0.1, rng)
        data_o.append(o)
        data_g.append(g)
        obs_norm.update(o)
        goal_norm.update(g)
        loss = fit(actor, obs_norm, goal_norm, np.concatenate(data_o), np.concatenate(data_g),
                   args.steps, rng)
        policy = GoalPolicy(Actor(OBS + GOAL, ACT, HIDDEN, LAYERS), obs_norm, goal_norm)
        policy.actor.load_state_dict(actor.state_dict())
        rate = np.mean(gym_success(policy, range(args.seed - 50, args.seed)))
        print(f'round {r}: {sum(len(x) for x in data_o)} samples, loss {loss:.4f}, '
              f'success {100 * rate:.0f}% (50 held-out seeds), {time.monotonic() - t0:.0f} s')
    spec = {'obs_dim': OBS, 'goal_dim': GOAL, 'act_dim': ACT, 'hidden': HIDDEN,
            'layers': LAYERS}
    save_checkpoint(args.out, KIND, {'max_action': 1.0, 'source': 'dagger_scripted_reference'},
                    spec, {'actor': actor.state_dict(), 'obs_norm': obs_norm.state_dict(),
                           'goal_norm': goal_norm.state_dict()})
    GoalPolicy.from_checkpoint(args.out, {'obs_dim': OBS, 'goal_dim': GOAL, 'act_dim': ACT})
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
