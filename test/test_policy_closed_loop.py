"""Closed loop on the real graph: sim driver and policy node as separate processes.

In lock-step mode the ROS loop must be the in-process loop, command for command: the same
actor, the same seeds, the same observation pipeline, only now every array crosses Fast DDS
between three processes. Any difference (joint order, stamps, a dropped or doubled step, a
velocity estimate taken over the wrong interval) shows up as diverging joint targets.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rclpy

from pick_place_rl.core.policy import GoalPolicy
from pick_place_rl.nodes import policy_client as pc
from pick_place_rl.nodes import sim_client as sc
from pick_place_rl.train.policy_eval import joint_sim_episodes
from test_policy_node import actor_checkpoint

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)


def test_ros_loop_matches_in_process_loop(tmp_path: Path) -> None:
    weights = actor_checkpoint(tmp_path / 'actor.pt', seed=3)
    driver = sc.start_driver('fetch', ['clock_mode:=lockstep', 'camera_rate:=0.0',
                                       'diagnostics_period:=1.0'])
    node = pc.start_policy_node(['weights:=' + str(weights), 'trigger:=joint_states',
                                 'use_sim_time:=true'],
                                params_file=str(ROOT / 'config' / 'fetch_policy.yaml'))
    rclpy.init()
    dc = sc.DriverClient('policy_loop_test')
    client = pc.PolicyClient(node=dc.node)
    try:
        assert pc.wait_for_driver(dc.node, 60), 'driver did not start'
        assert client.wait_ready(60), 'policy node did not come up'
        results = pc.run_episodes(dc, client, SEEDS)
        ros_cmds = [np.array(m.points[0].positions) for _, m in client.trajectories]
    except BaseException:
        print(sc.stop_driver(driver)[-3000:])
        print(pc.stop(node)[-3000:])
        raise
    finally:
        dc.destroy()
        rclpy.shutdown()
    for log in (sc.stop_driver(driver), pc.stop(node)):
        assert 'Traceback' not in log, log[-3000:]

    local: dict[int, list[np.ndarray]] = defaultdict(list)
    reference = joint_sim_episodes(GoalPolicy.from_checkpoint(weights), SEEDS,
                                   ROOT / 'urdf' / 'fetch.urdf',
                                   on_command=lambda s, c: local[s].append(c.arm))
    assert [r['steps'] for r in results] == [r['steps'] for r in reference] == [50, 50]
    expected = np.concatenate([np.array(local[s]) for s in SEEDS])
    assert len(ros_cmds) == len(expected)
    worst = np.max(np.abs(np.array(ros_cmds) - expected))
    assert worst < 1e-6, f'ROS commands differ from in-process ones by {worst:.2e} rad'
    for ros, ref in zip(results, reference):
        assert ros['distance'] == pytest.approx(ref['distance'], abs=1e-6)
        assert ros['success'] == ref['success']
