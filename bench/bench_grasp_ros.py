"""Benchmark of the grasp policy node: grasp success through ROS vs in-process, same seeds.

Each seed sets up the KUKA tray (held-out test objects, ``--objects`` of them, the driver's
reset to that seed) and is played three ways with the same grasp net:

``env``        the net's first grasp in the training env (``KukaPixelGraspEnv``, teleported
               approach): the number the net was judged on;
``joint sim``  ``GraspRunner`` on the sim driver core in-process (``sim/joint_grasp_loop.py``):
               the grasp executed with streamed joint targets, no ROS;
``ROS``        sim driver (lock-step) and grasp node (``trigger=joint_states``) as separate
               processes; the place goal sent on /pick_place/goal, the result read from
               /pick_place/status, ground truth from /pick_place/object_poses.

Reported per way: lifted (an object rose above 0.2 m, the env's success test) and, for the two
joint-controlled ways, the node's own result (picked and released at the goal) and placed
(ground truth: an object that was lifted ended within ``PLACE_RADIUS``, 10 cm, of the goal
in x-y).

Run: ``python bench/bench_grasp_ros.py --episodes 50``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import sys
import time

import numpy as np

from pick_place_rl.sim.joint_grasp_loop import judge
from pick_place_rl.sim.joint_grasp_loop import PLACE_GOAL as GOAL

ROOT = Path(__file__).resolve().parents[1]


def node_config():
    """GraspNodeConfig from config/kuka_policy.yaml (what the ROS node runs)."""
    import yaml

    from pick_place_rl.robot.grasp_config import GraspNodeConfig
    values = yaml.safe_load((ROOT / 'config' / 'kuka_policy.yaml').read_text())
    params = values['policy_node']['ros__parameters']
    fields = GraspNodeConfig.__dataclass_fields__
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()
              if k in fields}
    return GraspNodeConfig(**kwargs)


def env_success(net, seeds: list[int], objects: int) -> list[bool]:
    from pick_place_rl.sim.kuka_grasp_env import KukaPixelGraspEnv
    env = KukaPixelGraspEnv(split='test', n_objects=objects)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        _, _, _, _, info = env.step(net.act(obs))
        out.append(bool(info['is_success']))
    env.close()
    return out


def joint_sim(net, seeds: list[int], objects: int) -> list[dict]:
    from pick_place_rl.sim.joint_grasp_loop import run_loop
    eps = run_loop(net, node_config(), str(ROOT / 'urdf' / 'kuka_iiwa.urdf'), seeds, GOAL,
                   num_objects=objects)
    return [{'seed': e.seed, 'result': e.result, 'reason': e.reason, 'lifted': e.lifted,
             'placed': e.placed} for e in eps]


def through_ros(weights: Path, seeds: list[int], objects: int) -> dict:
    import rclpy

    from pick_place_rl.nodes import policy_client as pc
    from pick_place_rl.nodes import sim_client as sc
    from pick_place_rl.nodes.node_process import start_node
    driver = sc.start_driver('kuka', ['clock_mode:=lockstep', 'kuka_object_set:=test',
                                      f'kuka_num_objects:={objects}'],
                             params_file=ROOT / 'config' / 'kuka_sim.yaml')
    node = start_node('pick_place_rl.nodes.grasp_node',
                      ['-r', '__node:=policy_node', '--params-file',
                       str(ROOT / 'config' / 'kuka_policy.yaml'), '-p', f'weights:={weights}',
                       '-p', 'trigger:=joint_states', '-p', 'use_sim_time:=true'])
    rclpy.init()
    dc = sc.DriverClient('bench_grasp_ros')
    client = pc.PolicyClient(node=dc.node)
    episodes = []
    try:
        if not (pc.wait_for_driver(dc.node, 60) and client.wait_ready(60)):
            raise RuntimeError('driver or grasp node did not come up')
        t0 = time.monotonic()
        for seed in seeds:
            mark = len(dc.all_object_poses)
            ep = pc.run_episodes(dc, client, [seed], episode_timeout=120.0, place_goal=GOAL,
                                 inputs=('/joint_states', '/camera/image_raw'))[0]
            dc.spin_for(0.3)
            seen = [m.poses for m in dc.all_object_poses[mark:] if m.poses]
            n = len(seen[-1]) if seen else 0
            top = np.max([[p.position.z for p in poses] for poses in seen
                          if len(poses) == n], axis=0) if n else np.zeros(0)
            xy = np.array([[p.position.x, p.position.y] for p in seen[-1]]) if n else \
                np.zeros((0, 2))
            ep['lifted'], ep['placed'] = judge(top, xy, np.asarray(GOAL))
            episodes.append(ep)
            print(f'  ROS seed {seed}: {ep["result"]} lifted={ep["lifted"]} '
                  f'placed={ep["placed"]} ({ep["wall_s"]:.1f} s)', flush=True)
        wall = time.monotonic() - t0
        diag = client.diag_values()
    finally:
        dc.destroy()
        rclpy.shutdown()
        logs = sc.stop_driver(driver) + pc.stop(node)
        if 'Traceback' in logs:
            print(logs[-4000:], file=sys.stderr)
    for e in episodes:
        e.pop('status', None)
    return {'episodes': episodes, 'wall_s': wall, 'node_diagnostics': diag}


def rate(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else float('nan')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', type=Path, default=ROOT / 'models/dqn_pixel/qnet.pt')
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--first-seed', type=int, default=0)
    parser.add_argument('--objects', type=int, default=5)
    parser.add_argument('--skip', nargs='*', default=[], choices=['env', 'joint', 'ros'])
    parser.add_argument('--out', type=Path, default=None, help='write the results as JSON')
    args = parser.parse_args()
    import torch

    from pick_place_rl.core.grasp_policy import GraspPolicy
    torch.set_num_threads(1)
    net = GraspPolicy(args.weights)
    seeds = list(range(args.first_seed, args.first_seed + args.episodes))
    res: dict = {'weights': str(args.weights), 'seeds': [seeds[0], seeds[-1]],
                 'objects': args.objects, 'goal': GOAL,
                 'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(),
                             'load_avg_start': os.getloadavg()}}
    t = time.monotonic()
    if 'env' not in args.skip:
        res['env_lifted'] = env_success(net, seeds, args.objects)
        print(f'env        lifted {rate(res["env_lifted"]):.2f} '
              f'({time.monotonic() - t:.0f} s)', flush=True)
    t = time.monotonic()
    if 'joint' not in args.skip:
        res['joint_sim'] = joint_sim(net, seeds, args.objects)
        js = res['joint_sim']
        print(f'joint sim  lifted {rate([e["lifted"] for e in js]):.2f}  success '
              f'{rate([e["result"] == "success" for e in js]):.2f}  placed '
              f'{rate([e["placed"] for e in js]):.2f} ({time.monotonic() - t:.0f} s)',
              flush=True)
    if 'ros' not in args.skip:
        res['ros'] = through_ros(args.weights, seeds, args.objects)
        eps = res['ros']['episodes']
        print(f'ROS        lifted {rate([e["lifted"] for e in eps]):.2f}  success '
              f'{rate([e["success"] for e in eps]):.2f}  placed '
              f'{rate([e["placed"] for e in eps]):.2f} ({res["ros"]["wall_s"]:.0f} s)',
              flush=True)
    res['machine']['load_avg_end'] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
