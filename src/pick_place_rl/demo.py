"""``pick-place-rl demo``: the simulated Fetch picks and places, through ROS 2, goal after goal.

Brings up the ``sim_robot`` graph (the MuJoCo Fetch sim driver and the policy node, separate
processes on Fast DDS, exactly as ``pick-place-rl launch sim_robot`` does), then for each seed
resets the simulator to that seed's episode, sends its goal on ``/pick_place/goal`` and waits
for the result on ``/pick_place/status``, printing result and time per goal and the success
rate at the end. ``--record`` writes every topic of the run to an MCAP file (rosbag2 format);
the camera frames become an animation (GIF) and a picture (PNG) of the robot at work.

Exit codes: 0 the demo ran (and reached ``--min-success``); 1 it failed (a node crashed, no
result in time, success below ``--min-success``); 2 bad input (see the message); 130 Ctrl-C.
Every node process is stopped on the way out, whatever happened.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import signal
import sys
import time
from typing import Any

from pick_place_rl.bringup.graph import file_parameters, GraphError, ROBOTS
from pick_place_rl.bringup.supervisor import Supervisor

#: topics recorded by ``--record`` (the camera's depth is left out: 300 kB a frame)
RECORD_TOPICS = ('/joint_states', '/pick_place/object_pose', '/pick_place/sim_goal',
                 '/pick_place/goal', '/pick_place/status', '/pick_place/markers',
                 '/arm_controller/joint_trajectory', '/gripper_controller/commands',
                 '/camera/image_raw', '/camera/camera_info', '/diagnostics', '/clock')
ROBOT_TITLES = {'fetch': 'Fetch pick-and-place (MuJoCo, DDPG+HER actor)',
                'kuka': 'KUKA iiwa pick-and-place (PyBullet, DQN grasp net, held-out objects)'}
#: The KUKA goals: pick any object with the grasp net, put it here (the grasp benchmark's goal;
#: sim/joint_grasp_loop.py). Fetch goals come with each seed's episode.
PLACE_GOALS = {'kuka': (0.72, 0.22, -0.12)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--robot', choices=ROBOTS, default='fetch', help='simulated robot')
    parser.add_argument('--goals', type=int, default=10, help='number of pick-place goals')
    parser.add_argument('--seed', type=int, default=0,
                        help='first episode seed (goal i uses seed + i)')
    parser.add_argument('--weights', default='',
                        help='policy weights (default: the shipped model of the robot)')
    parser.add_argument('--clock-mode', choices=('lockstep', 'realtime', 'fast'),
                        default='lockstep',
                        help='lockstep: one simulator step per policy command, deterministic '
                             "and as fast as the CPU allows (the benchmark's mode); realtime: "
                             'paced to the wall clock, as a real robot')
    parser.add_argument('--out-dir', type=Path, default=Path('runs/demo'),
                        help='results, logs, animation and recording go here')
    parser.add_argument('--record', nargs='?', const='demo.mcap', default=None,
                        metavar='FILE.mcap',
                        help='record the topics to an MCAP file (relative: in --out-dir)')
    parser.add_argument('--no-animation', action='store_true',
                        help='do not write demo.gif / demo.png')
    parser.add_argument('--episode-timeout', type=float, default=60.0,
                        help="seconds to wait for one goal's result")
    parser.add_argument('--min-success', type=float, default=0.0,
                        help='exit 1 when the success rate is below this fraction')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS_DOMAIN_ID to use')
    parser.add_argument('--verbose', action='store_true', help="echo the nodes' output")


def say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    from pick_place_rl import launcher

    if args.goals < 1:
        print('demo: --goals must be at least 1', file=sys.stderr)
        return 2
    given = {'robot': args.robot, 'clock_mode': args.clock_mode, 'seed': str(args.seed)}
    if args.weights:
        given['weights'] = str(Path(args.weights).expanduser().resolve())
    say(f'pick_place_rl demo: {ROBOT_TITLES[args.robot]} through ROS 2, {args.goals} goals')
    try:
        nodes, specs = launcher.prepare('sim_robot', given, args.domain_id)
    except GraphError as exc:
        print(f'demo: {str(exc).replace("weights:=PATH", "--weights PATH")}', file=sys.stderr)
        return 2
    policy = next(n for n in nodes if n.name == 'policy_node')
    weights = {**file_parameters(policy), **policy.parameters}.get('weights')
    say(f'[setup] weights: {weights}')
    args.weights = str(weights)  # as resolved, for demo_results.json
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    def report(text: str) -> None:
        if args.verbose or 'crashed' in text:
            print(f'[launch] {text}', file=sys.stderr, flush=True)
    supervisor = Supervisor(specs, log_dir=out / 'logs', echo=args.verbose, stop_timeout=10.0,
                            report=report)
    say(f'[setup] starting {", ".join(n.name for n in nodes)} (clock {args.clock_mode}; '
        f'node logs in {out / "logs"})')
    # Ctrl-C and SIGTERM end the demo the same way, even when started where SIGINT was ignored.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    try:
        supervisor.start()  # from this thread: the nodes die with it (PDEATHSIG)
        return _session(args, supervisor, out)
    except KeyboardInterrupt:
        print('demo: interrupted', file=sys.stderr)
        return 130
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _session(args: argparse.Namespace, supervisor: Supervisor, out: Path) -> int:
    from pick_place_rl.nodes.demo_session import DemoFailed, DemoSession

    def supervise() -> None:
        supervisor.poll()
        if supervisor.stopping:
            dead = [c.spec.name for c in supervisor.children if c.exit_code not in (None, 0)]
            raise DemoFailed(f'{", ".join(dead) or "a node"} stopped during the demo')

    record = None
    if args.record:
        record = Path(args.record) if Path(args.record).is_absolute() else out / args.record
    try:
        with DemoSession(supervise, record, RECORD_TOPICS, not args.no_animation,
                         args.domain_id) as session:
            t0 = time.monotonic()
            session.wait_ready()
            say(f'[setup] robot and policy ready in {time.monotonic() - t0:.1f} s')
            results = []
            for i in range(args.goals):
                results.append(session.episode(i, args.seed + i, args.episode_timeout,
                                               PLACE_GOALS.get(args.robot)))
                say(_goal_line(i, args.goals, results[-1]))
        if session.recorded is not None:
            path, topics, messages = session.recorded
            say(f'recorded: {path} ({topics} topics, {messages} messages)')
    except DemoFailed as exc:
        supervisor.poll()
        print(f'demo: FAILED: {exc}', file=sys.stderr)
        for child in supervisor.children:
            tail = list(child.tail)[-8:]
            if tail:
                print(f'--- last output of {child.spec.name} ---\n' + '\n'.join(tail),
                      file=sys.stderr)
        return 1
    code = _summary(args, results, out)
    if session.frames:
        write_animation(session.frames, [r['result'] for r in results], out)
        say(f'animation: {out / "demo.gif"}; picture: {out / "demo.png"} '
            f'({len(session.frames)} camera frames)')
    return code


def _goal_line(index: int, total: int, r: dict) -> str:
    where = '(' + ', '.join(f'{v:.2f}' for v in r['goal']) + ')' if r.get('goal') else ''
    dist = '' if r['distance'] is None else f'distance {r["distance"]:.3f} m'
    return (f'goal {index + 1:>2}/{total}  seed {r["seed"]:<4} {where:<20} {r["result"]:<8} '
            f'{r["wall_s"]:5.1f} s  {dist}  {r["steps"]} steps')


def write_animation(frames: list[tuple[int, Any]], results: list[str], out: Path,
                    max_frames: int = 240) -> None:
    """``demo.gif`` (every episode, its number and result written on it) and ``demo.png``
    (the last frame of the first successful episode, else of the last one)."""
    from PIL import Image, ImageDraw

    step = max(1, len(frames) // max_frames)
    images = []
    for episode, rgb in frames[::step]:
        image = Image.fromarray(rgb)
        label = f'goal {episode + 1}: {results[episode] if episode < len(results) else ""}'
        ImageDraw.Draw(image).text((6, 4), label, fill=(255, 255, 255))
        images.append(image)
    images[0].save(out / 'demo.gif', save_all=True, append_images=images[1:],
                   duration=100 * step, loop=0, optimize=True)
    wins = [e for e, r in enumerate(results) if r == 'success']
    pick = wins[0] if wins else max(e for e, _ in frames)
    Image.fromarray([rgb for e, rgb in frames if e == pick][-1]).save(out / 'demo.png')


def _summary(args: argparse.Namespace, results: list[dict], out: Path) -> int:
    n_ok = sum(r['success'] for r in results)
    rate = n_ok / len(results)
    mean_t = sum(r['wall_s'] for r in results) / len(results)
    say(f'success rate: {n_ok}/{len(results)} ({100 * rate:.0f}%), '
        f'{mean_t:.1f} s per goal on average')
    (out / 'demo_results.json').write_text(json.dumps({
        'robot': args.robot, 'clock_mode': args.clock_mode, 'weights': args.weights,
        'seeds': [r['seed'] for r in results], 'success_rate': rate, 'episodes': results,
        'host_cpus': os.cpu_count()}, indent=2))
    say(f'results: {out / "demo_results.json"}')
    if rate < args.min_success:
        print(f'demo: success rate {rate:.2f} below --min-success {args.min_success:.2f}',
              file=sys.stderr)
        return 1
    return 0
