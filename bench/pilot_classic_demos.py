"""Pilot: the classic DQN with its replay seeded by scripted episodes (DQfD-style seeding).

The scripted policy (``bench_grasp.nearest_object_policy``) reads the true object positions and
lifts ~0.7. Its episodes go into the replay before training; then the usual DQN trains for
``--minutes`` CPU minutes. ``--demos 0`` is the control. A question for the classic task
(does experience of good grasps help where exploration is the bottleneck?), not a trainer
feature: the seeding is not in the trainer.

Run: ``python bench/pilot_classic_demos.py --demos 1000 --minutes 18 --out-dir runs/dqfd_1000``
then ``python bench/bench_grasp.py --task classic --weights runs/dqfd_1000/qnet.pt``.
"""
from __future__ import annotations

import argparse
import json
import time

from bench_grasp import nearest_object_policy

from pick_place_rl.train.dqn import DQNConfig, DQNTrainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--demos', type=int, default=1000, help='scripted episodes in the replay')
    ap.add_argument('--minutes', type=float, default=18.0, help='CPU minutes of DQN training')
    ap.add_argument('--out-dir', required=True)
    args = ap.parse_args()
    config = DQNConfig(out_dir=args.out_dir, minutes=args.minutes, budget_clock='cpu',
                       eps_decay_steps=8000, n_eval_episodes=50, progress=False,
                       tensorboard=False)
    trainer = DQNTrainer(config)
    policy = nearest_object_policy(trainer.env)
    start, lifted = time.process_time(), 0.0
    for i in range(args.demos):
        obs, _ = trainer.env.reset(seed=10_000_000 + i)  # seeds apart from training's
        done, info = False, {}
        while not done:
            action = policy(obs)
            next_obs, reward, terminated, truncated, info = trainer.env.step(action)
            trainer.replay.add(obs, action, reward, next_obs, terminated)
            obs, done = next_obs, terminated or truncated
        lifted += float(info.get('is_success', False))
    print(json.dumps({'demos': args.demos, 'demo_success': lifted / max(args.demos, 1),
                      'demo_cpu_s': round(time.process_time() - start, 1)}), flush=True)
    trainer.train()


if __name__ == '__main__':
    main()
