"""End to end: ``pick-place-rl launch sim_robot`` brings up the MuJoCo Fetch driver and the policy
node as separate processes, ``pick-place-rl goal`` sends goals over Fast DDS and gets their
results from /pick_place/status, Ctrl-C takes everything down."""
from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys

import pytest

from test_bringup_launcher import _alive, Launched, ROOT
from test_policy_node import actor_checkpoint

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def goal(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'pick_place_rl.cli', 'goal', *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


def test_launch_send_goals_and_stop(tmp_path: Path) -> None:
    weights = actor_checkpoint(tmp_path / 'actor.pt')  # random actor: the loop, not the skill
    run = Launched('sim_robot', f'weights:={weights}', 'respawn:=true', '--no-clash-check')
    try:
        run.wait_for(r'\[policy_node\] .*loaded weights', 120)
        # An episode: 50 actions at 25 Hz of simulated real time, then a result.
        done = goal('1.30', '0.75', '0.50', '--json', '--wait-node', '60', '--timeout', '60')
        assert done.returncode in (0, 1), done.stdout + done.stderr + run.text[-3000:]
        final = json.loads(done.stdout.strip().splitlines()[-1])
        assert final['result'] in ('success', 'failure'), final
        assert final['goal'] == [1.3, 0.75, 0.5]
        if final['result'] == 'failure':
            assert final['step'] == final['max_steps'], 'a failure uses the whole episode'
        assert final['distance'] is not None and final['wall_s'] > 1.0
        # Ctrl-C while the episode runs cancels the goal on the policy node.
        tool = subprocess.Popen([sys.executable, '-m', 'pick_place_rl.cli', 'goal', '1.3',
                                 '0.75', '0.5'], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        seen = []
        for line in tool.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if 'running' in line:
                tool.send_signal(signal.SIGINT)
                break
        rest, _ = tool.communicate(timeout=30)
        assert tool.returncode == 130, ''.join(seen) + rest
        assert 'interrupted, goal cancelled' in rest
        # Outside the workspace: refused with a reason, exit code 2.
        refused = goal('3.0', '0.75', '0.50')
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert 'rejected' in refused.stdout and 'outside the workspace' in refused.stdout
        # respawn:=true: a killed policy node comes back, loads its weights, takes goals.
        first = run.pids()['policy_node']
        os.kill(first, signal.SIGKILL)
        run.wait_for(r'respawning policy_node', 20)
        run.wait_for(r'(?s)loaded weights.*loaded weights', 120)  # the new process's
        again = goal('1.30', '0.75', '0.50', '--wait-node', '60', '--timeout', '60')
        assert again.returncode in (0, 1), again.stdout + again.stderr + run.text[-3000:]
        pids = run.pids()
        assert set(pids) == {'sim_driver', 'policy_node'} and pids['policy_node'] != first
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(timeout=30) == 0, run.text[-3000:]
        assert not any(_alive(p) for p in pids.values()), 'a node outlived the launcher'
        assert run.text.count('crashed') == 1, run.text[-3000:]  # the kill above only
    finally:
        run.close()


def test_goal_without_policy_node_is_a_clear_error() -> None:
    proc = goal('1.3', '0.75', '0.5', '--wait-node', '2')
    assert proc.returncode == 3
    assert 'no policy node listens on /pick_place/goal' in proc.stderr
    proc = goal('1.3', '0.75')
    assert proc.returncode == 2 and 'required: z' in proc.stderr
    assert 'Traceback' not in proc.stderr
