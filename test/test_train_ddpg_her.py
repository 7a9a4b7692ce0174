"""DDPG+HER trainer: a fast learning test, resume after kill -9, clear errors."""
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.policy import GoalPolicy
from pick_place_rl.sim.registry import make_env, UnknownEnvError
from pick_place_rl.train.ddpg_her import DDPGHerConfig, DDPGHerTrainer, evaluate

TINY = dict(env_id='FetchReach-v4', n_envs=2, n_cycles=2, n_batches=4, batch_size=64,
            n_eval_episodes=2, final_eval_episodes=2, tensorboard=False, progress=False,
            torch_threads=1, hidden=32, layers=2, async_envs=False)


@pytest.mark.slow
def test_fetch_reach_learns_fast(tmp_path):
    """FetchReach to >= 0.9 success on 32 fixed-seed episodes after 6,000 env steps.

    Counted in epochs, not minutes, so the outcome does not depend on the machine's load.
    """
    config = DDPGHerConfig(env_id='FetchReach-v4', n_envs=4, n_cycles=10, n_batches=20,
                           batch_size=256, hidden=64, layers=2, n_eval_episodes=8,
                           final_eval_episodes=32, minutes=30.0, epochs=3, out_dir=str(tmp_path),
                           progress=False, tensorboard=False, torch_threads=1,
                           async_envs=False)
    metrics = DDPGHerTrainer(config).train()
    assert metrics['final']['success_rate'] >= 0.9, metrics['history'][-3:]
    # the exported actor, loaded the way the policy node loads it, does as well
    policy = GoalPolicy.from_checkpoint(tmp_path / 'actor.pt')
    env = DDPGHerTrainer(DDPGHerConfig(**{**TINY, 'out_dir': str(tmp_path / 'x')})).eval_env
    result = evaluate(env, 50, policy, 8, first_seed=config.eval_seed)
    assert result['success_rate'] >= 0.75


def test_outputs_and_resume(tmp_path):
    config = DDPGHerConfig(**TINY, epochs=2, out_dir=str(tmp_path))
    DDPGHerTrainer(config).train()
    for name in ('checkpoint.pt', 'replay.npz', 'actor.pt', 'metrics.json', 'curve.png',
                 'progress.csv'):
        assert (tmp_path / name).exists(), name
    resumed = DDPGHerTrainer(DDPGHerConfig(**TINY, epochs=3, out_dir=str(tmp_path),
                                           resume=True))
    assert resumed.epoch == 2 and resumed.buffer.n_episodes == 2 * 2 * 2
    metrics = resumed.train()
    assert [h['epoch'] for h in metrics['history']] == [1, 2, 3]
    assert metrics['env_steps'] == 3 * 2 * 2 * 50


def test_resume_without_checkpoint_and_mismatched_shapes(tmp_path):
    with pytest.raises(CheckpointError, match='no checkpoint'):
        DDPGHerTrainer(DDPGHerConfig(**TINY, out_dir=str(tmp_path), resume=True))
    DDPGHerTrainer(DDPGHerConfig(**TINY, epochs=1, out_dir=str(tmp_path))).train()
    with pytest.raises(CheckpointError, match='hidden is 32 in the checkpoint, expected 64'):
        DDPGHerTrainer(DDPGHerConfig(**{**TINY, 'hidden': 64}, out_dir=str(tmp_path),
                                     resume=True))


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(UnknownEnvError, match='did you mean FetchReach-v4'):
        make_env('FetchReech-v4')


def test_cli_reports_unknown_env_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'pick_place_rl.cli', 'train', 'ddpg-her',
                           '--env', 'NoSuchEnv-v0', '--out-dir', str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown environment id 'NoSuchEnv-v0'" in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_kill_9_then_resume_loses_at_most_one_epoch(tmp_path):
    args = [sys.executable, '-m', 'pick_place_rl.cli', 'train', 'ddpg-her',
            '--out-dir', str(tmp_path), '--epochs', '1000', '--minutes', '10']
    for key, value in TINY.items():
        args += ['--' + key.replace('_', '-'), str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv = Path(tmp_path) / 'progress.csv'
    deadline = time.time() + 120
    while time.time() < deadline and (not csv.exists() or len(csv.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logged = len(csv.read_text().splitlines()) - 1  # epochs finished before the kill
    assert logged >= 2
    trainer = DDPGHerTrainer(DDPGHerConfig(**TINY, out_dir=str(tmp_path), resume=True))
    assert trainer.epoch >= logged - 1
    assert trainer.buffer.total_episodes == trainer.epoch * 2 * 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_rollout_policy_input_shapes():
    env = make_env('FetchPush-v4')
    obs, _ = env.reset(seed=0)
    assert obs['observation'].shape == (25,) and obs['desired_goal'].shape == (3,)
    assert np.isfinite(obs['observation']).all()


def test_sigterm_finishes_the_run_with_outputs(tmp_path):
    args = [sys.executable, '-m', 'pick_place_rl.cli', 'train', 'ddpg-her',
            '--out-dir', str(tmp_path), '--epochs', '1000', '--minutes', '10',
            '--final-eval-episodes', '2']
    for key, value in TINY.items():
        if key != 'final_eval_episodes':
            args += ['--' + key.replace('_', '-'), str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv = Path(tmp_path) / 'progress.csv'
    deadline = time.time() + 120
    while time.time() < deadline and not csv.exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert 'stopping after this cycle' in err
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['epochs'] >= 1 and (tmp_path / 'actor.pt').exists()


def test_invalid_config_values_are_refused_up_front():
    with pytest.raises(ValueError, match=r'n_envs=0 \(must be >= 1\).*gamma=1.5'):
        DDPGHerConfig(n_envs=0, gamma=1.5)
