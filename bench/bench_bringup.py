"""Benchmark of the bring-up: time until the graph answers, time per goal, time to stop.

1. ``pick-place-rl launch sim_robot`` (sim driver + policy node): seconds from the command to
   the first ``/joint_states`` and to the policy node's first status, with and without the
   domain clash probe; then seconds from SIGINT until every node process is gone.
2. ``pick-place-rl demo`` on the same weights and seeds in lock-step (the benchmark clock) and
   in real time: setup time, wall seconds per goal, success rate.

Run: ``python bench/bench_bringup.py --weights runs/reference_actor/actor.pt --goals 10``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, '-m', 'pick_place_rl.cli']


def _alive(pid: int) -> bool:
    try:
        return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def launch_timing(weights: str, clash_check: bool) -> dict:
    import rclpy
    from sensor_msgs.msg import JointState

    from pick_place_rl.nodes.goal_tool import GoalClient
    extra = [] if clash_check else ['--no-clash-check']
    t0 = time.monotonic()
    proc = subprocess.Popen([*CLI, 'launch', 'sim_robot', f'weights:={weights}', *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    rclpy.init()
    node = rclpy.create_node('bench_bringup')
    got: list[float] = []
    node.create_subscription(JointState, '/joint_states',
                             lambda m: got.append(time.monotonic()) if not got else None, 10)
    client = GoalClient(node)
    try:
        assert client.spin_until(lambda: bool(got), 180), 'no /joint_states'
        t_js = got[0] - t0
        assert client.wait_for_policy(180), 'no policy node'
        t_policy = time.monotonic() - t0
    finally:
        node.destroy_node()
        rclpy.shutdown()
    t1 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=60)[0]  # idle nodes print little: the pipe never fills
    t_stop = time.monotonic() - t1
    pids = [int(p) for p in re.findall(r'started \w+ \(pid (\d+)\)', text)]
    return {'clash_check': clash_check, 'first_joint_states_s': round(t_js, 2),
            'policy_ready_s': round(t_policy, 2), 'stop_s': round(t_stop, 2),
            'exit_code': proc.returncode, 'left_running': [p for p in pids if _alive(p)]}


def demo_timing(weights: str, goals: int, clock_mode: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix='bench_demo_'))
    t0 = time.monotonic()
    proc = subprocess.run([*CLI, 'demo', '--goals', str(goals), '--weights', weights,
                           '--clock-mode', clock_mode, '--out-dir', str(out)],
                          capture_output=True, text=True, timeout=3600, cwd=ROOT)
    total = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    ready = float(re.search(r'ready in ([\d.]+) s', proc.stdout).group(1))
    res = json.loads((out / 'demo_results.json').read_text())
    walls = [e['wall_s'] for e in res['episodes']]
    return {'clock_mode': clock_mode, 'goals': goals, 'success_rate': res['success_rate'],
            'setup_s': ready, 'goal_wall_s_mean': round(sum(walls) / len(walls), 2),
            'goal_wall_s_max': round(max(walls), 2), 'total_s': round(total, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True, help='actor checkpoint for the policy node')
    parser.add_argument('--goals', type=int, default=10)
    parser.add_argument('--out', type=Path, default=None, help='write the results as JSON')
    args = parser.parse_args()
    weights = str(Path(args.weights).resolve())
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    result = {'host': {'cpus': os.cpu_count(), 'machine': platform.machine(),
                       'load_avg_1min': os.getloadavg()[0]},
              'launch': [launch_timing(weights, False), launch_timing(weights, True)],
              'demo': [demo_timing(weights, args.goals, mode)
                       for mode in ('lockstep', 'realtime')]}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
