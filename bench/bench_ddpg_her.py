"""Same wall-clock budget, same machine, same evaluation: this trainer vs Stable-Baselines3.

Usage (each contender runs in turn, in its own process, for ``--minutes``)::

    python bench/bench_ddpg_her.py --env FetchPush-v4 --minutes 20 \
        --contenders ours baseline sb3-ddpg sb3-tqc

Long budgets can be split across sessions and cores: ``--results`` on a committed path with
``--merge`` adds this run's rows to the earlier ones, and ``--cpus`` pins a run to some cores,
so two single-worker contenders can run side by side, one core each (each row records its
cores, its start time and the load before it).

Contenders:
  ours      pick_place_rl DDPG+HER, default (fast) recipe, or ``--ours-preset``
  baseline  pick_place_rl DDPG+HER, ``--preset baseline`` (classic single-worker HER recipe)
  sb3-ddpg  Stable-Baselines3 DDPG + HerReplayBuffer, HER-paper hyper-parameters
  sb3-tqc   sb3-contrib TQC + HerReplayBuffer, rl-zoo3 hyper-parameters (tqc.yml, Fetch*)

Every contender is evaluated the same way: the deterministic policy on the episodes seeded
1_000_000 + i, success = ``is_success`` at the last step, evaluation time counted in the wall
clock. Prints a table of time-to-0.5, time-to-0.9 and success at the budget (``--final-episodes``
episodes), and writes it as JSON next to the run folders.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np

EVAL_SEED = 1_000_000


def time_to(history: list[dict], threshold: float) -> float | None:
    hits = [h['wall_s'] for h in history if h['success_rate'] >= threshold]
    return hits[0] if hits else None


def run_ours(env_id: str, minutes: float, out: Path, seed: int, preset: str | None,
             n_eval: int, final_episodes: int, extra: list[str]) -> dict:
    cmd = [sys.executable, '-m', 'pick_place_rl.cli', 'train', 'ddpg-her', '--env', env_id,
           '--minutes', str(minutes), '--seed', str(seed), '--out-dir', str(out),
           '--progress', 'false', '--tensorboard', 'false', '--n-eval-episodes', str(n_eval),
           '--final-eval-episodes', str(final_episodes)]
    if preset:
        cmd += ['--preset', preset]
    subprocess.run(cmd + extra, check=True)
    metrics = json.loads((out / 'metrics.json').read_text())
    return {'history': metrics['history'], 'final': metrics['final']['success_rate'],
            'env_steps': metrics['env_steps'], 'wall_s': metrics['wall_s']}


def evaluate_sb3(model, env, n_episodes: int) -> float:
    successes = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        info = {}
        for _ in range(env.spec.max_episode_steps or 50):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        successes.append(float(info.get('is_success', 0.0)))
    return float(np.mean(successes))


def run_sb3(algo: str, env_id: str, minutes: float, seed: int, n_eval: int,
            final_episodes: int, eval_every_s: float) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DDPG, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    from pick_place_rl.sim.registry import make_env

    def make() -> gym.Env:
        env = make_env(env_id)
        if algo == 'sb3-tqc':
            from sb3_contrib.common.wrappers import TimeFeatureWrapper
            env = TimeFeatureWrapper(env)
        return env

    env, eval_env = make(), make()
    act_dim = env.action_space.shape[0]
    her = dict(replay_buffer_class=HerReplayBuffer,
               replay_buffer_kwargs=dict(goal_selection_strategy='future', n_sampled_goal=4))
    if algo == 'sb3-tqc':
        from sb3_contrib import TQC
        model = TQC('MultiInputPolicy', env, buffer_size=1_000_000, batch_size=2048, gamma=0.95,
                    learning_rate=1e-3, tau=0.05, seed=seed, verbose=0,
                    policy_kwargs=dict(net_arch=[512, 512, 512], n_critics=2), **her)
    else:
        model = DDPG('MultiInputPolicy', env, buffer_size=1_000_000, batch_size=256,
                     gamma=0.98, learning_rate=1e-3, tau=0.05, learning_starts=1000,
                     train_freq=(100, 'step'), gradient_steps=40, seed=seed, verbose=0,
                     action_noise=NormalActionNoise(np.zeros(act_dim), 0.2 * np.ones(act_dim)),
                     policy_kwargs=dict(net_arch=[256, 256, 256]), **her)
    history: list[dict] = []
    start = time.perf_counter()
    budget = minutes * 60.0

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = eval_every_s

        def _on_step(self) -> bool:
            elapsed = time.perf_counter() - start
            if elapsed >= self.next_eval:
                success = evaluate_sb3(self.model, eval_env, n_eval)
                history.append({'wall_s': round(time.perf_counter() - start, 1),
                                'env_steps': self.num_timesteps, 'success_rate': success})
                print(f'{algo}: {history[-1]}', flush=True)
                self.next_eval = elapsed + eval_every_s
            return elapsed < budget

    model.learn(total_timesteps=10**9, callback=Clock())
    final = evaluate_sb3(model, eval_env, final_episodes)
    return {'history': history, 'final': final, 'env_steps': model.num_timesteps,
            'wall_s': round(time.perf_counter() - start, 1)}


def table_rows(results: dict) -> list[dict]:
    rows = []
    for name, r in results.items():
        rows.append({'contender': name, 'env_steps': r['env_steps'],
                     'steps_per_s': round(r['env_steps'] / max(r['wall_s'], 1e-9), 1),
                     'time_to_0.5_s': time_to(r['history'], 0.5),
                     'time_to_0.9_s': time_to(r['history'], 0.9),
                     'success_at_budget': r['final'],
                     'started': r.get('started'), 'loadavg_1m': r.get('loadavg_1m'),
                     'cpus': r.get('cpus')})
    return rows


def write_results(path: Path, env_id: str, minutes: float, results: dict) -> None:
    """Written after every contender, atomically, so a run cut short keeps what finished."""
    from pick_place_rl.core.checkpoint import atomic_write_json

    atomic_write_json(path, {'env': env_id, 'minutes': minutes, 'rows': table_rows(results),
                             'raw': results})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--env', default='FetchPush-v4')
    parser.add_argument('--minutes', type=float, default=20.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--contenders', nargs='+',
                        choices=['ours', 'baseline', 'sb3-ddpg', 'sb3-tqc'],
                        default=['ours', 'baseline', 'sb3-ddpg', 'sb3-tqc'])
    parser.add_argument('--eval-episodes', type=int, default=32,
                        help='episodes per intermediate evaluation')
    parser.add_argument('--final-episodes', type=int, default=100)
    parser.add_argument('--eval-every-s', type=float, default=60.0,
                        help='SB3 contenders: seconds between evaluations')
    parser.add_argument('--ours-preset', default=None,
                        help="preset for the 'ours' contender (e.g. reach for FetchReach-v4)")
    parser.add_argument('--ours-args', default='',
                        help="extra trainer flags for 'ours' and 'baseline', e.g. "
                             "'--torch-threads 2' (recorded in the row)")
    parser.add_argument('--out', default='runs/bench_ddpg_her')
    parser.add_argument('--results', default=None,
                        help='results JSON (default OUT/ENV/results.json); a committed path '
                             'such as bench/results/ lets --merge continue in a later checkout')
    parser.add_argument('--merge', action='store_true',
                        help='keep the contenders of an earlier results.json with the same env '
                             'and budget (each row keeps its own start time and load); the file '
                             'is re-read before each write, so runs side by side can share it')
    parser.add_argument('--cpus', default=None,
                        help="pin this run to these CPU cores, e.g. '0' or '0,1' (recorded in "
                             'each row): two single-worker contenders side by side, a core each')
    args = parser.parse_args()
    out = Path(args.out) / args.env
    out.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results) if args.results else out / 'results.json'
    results_path.parent.mkdir(parents=True, exist_ok=True)
    cpus = None
    if args.cpus:
        cpus = sorted({int(c) for c in args.cpus.split(',')})
        os.sched_setaffinity(0, cpus)  # inherited by the trainer subprocesses
        import torch
        torch.set_num_threads(len(cpus))

    def earlier_rows() -> dict:
        if not (args.merge and results_path.exists()):
            return {}
        earlier = json.loads(results_path.read_text())
        if earlier.get('minutes') != args.minutes:
            parser.error(f"{results_path} has a {earlier.get('minutes')}-minute budget, "
                         f'not {args.minutes}')
        return earlier['raw']

    results = earlier_rows()
    for name in args.contenders:
        print(f'== {name} on {args.env} for {args.minutes} min', flush=True)
        started = time.strftime('%Y-%m-%d %H:%M', time.gmtime())
        load = os.getloadavg()[0]
        if name in ('ours', 'baseline'):
            result = run_ours(args.env, args.minutes, out / name, args.seed,
                              'baseline' if name == 'baseline' else args.ours_preset,
                              args.eval_episodes, args.final_episodes, args.ours_args.split())
            result['trainer_args'] = args.ours_args
        else:
            result = run_sb3(name, args.env, args.minutes, args.seed,
                             args.eval_episodes, args.final_episodes, args.eval_every_s)
        # The load before the contender starts: during a run its own env workers raise it.
        result.update(started=started, loadavg_1m=round(load, 2), cpus=cpus)
        with open(results_path.with_suffix('.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            results = {**earlier_rows(), **results, name: result}
            write_results(results_path, args.env, args.minutes, results)
    print(f'\n{args.env}, budget {args.minutes} min, final eval {args.final_episodes} episodes')
    print('| contender | env steps | steps/s | time to 0.5 (s) | time to 0.9 (s) | success '
          '| started (UTC) | load before | cores |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in table_rows(results):
        print(f"| {r['contender']} | {r['env_steps']} | {r['steps_per_s']} | "
              f"{r['time_to_0.5_s']} | {r['time_to_0.9_s']} | {r['success_at_budget']:.2f} | "
              f"{r['started']} | {r['loadavg_1m']} | {r['cpus'] or 'all'} |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
