"""Benchmark of the sim driver on the real ROS graph, per robot.

The driver starts from the shipped ``config/<robot>_sim.yaml`` (camera size: Fetch 320x240,
KUKA 128x128), with the mode and rates below set on top.

1. Real time: driver in ``clock_mode=realtime`` with /joint_states at 100 Hz and the camera at
   10 Hz while this process sends a joint trajectory at 25 Hz; reports the real-time factor
   (sim seconds per wall second, from /clock) and the rates received here.
2. Fast: driver in ``clock_mode=fast`` (camera off, /joint_states at 100 Hz of sim time);
   reports control steps (0.04 s of sim time each) per wall second and per CPU second (robust
   on a loaded machine), next to the bare simulator in this same run, taking turns with it:
   ``gym.make('FetchPickAndPlace-v4')`` stepping random actions for Fetch, the bare PyBullet
   KUKA scene stepping 0.04 s per step for KUKA.
3. Lock-step: this process sends trajectory + gripper command and waits for the resulting
   /joint_states, round trip, as an evaluation loop would.
4. In-process (``--modes inprocess``, not in the default set): the driver node's fast loop run
   inside this process with no subscribers, next to the bare simulator: the driver's own cost.

Run: ``python bench/bench_sim_driver.py [--robots fetch kuka] [--seconds 10] [--modes ...]``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from pick_place_rl.nodes import sim_client as sc

CONTROL_PERIOD = 0.04


def _arm_names(robot: str) -> tuple[str, ...]:
    if robot == 'fetch':
        from pick_place_rl.sim.fetch_model import ARM_JOINTS
        return ARM_JOINTS
    from pick_place_rl.sim.kuka_scene import ARM_JOINT_NAMES
    return ARM_JOINT_NAMES


def _gripper(robot: str, k: int) -> list[float]:
    opening = 0.02 * (k % 2)
    return [opening, opening] if robot == 'fetch' else [-5 * opening, 5 * opening]


class ClockWatch:
    """(wall, sim) of the first and last /clock messages after ``start``."""

    def __init__(self, client: sc.DriverClient) -> None:
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.armed = False
        client.node.create_subscription(
            Clock, '/clock', self._on_clock,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))

    def _on_clock(self, msg: Clock) -> None:
        if not self.armed:
            return
        sample = (time.monotonic(), msg.clock.sec + 1e-9 * msg.clock.nanosec)
        if self.first is None:
            self.first = sample
        self.last = sample

    def rate(self) -> float:
        """Sim seconds per wall second between the first and last sample."""
        (w0, s0), (w1, s1) = self.first, self.last
        return (s1 - s0) / (w1 - w0)


def _params_file(robot: str) -> Path:
    """The shipped parameters (camera size etc.); the benchmark overrides mode and rates."""
    return Path(__file__).resolve().parents[1] / 'config' / f'{robot}_sim.yaml'


def _start(robot: str, mode: str, camera_rate: float, client: sc.DriverClient) -> object:
    proc = sc.start_driver(robot, [f'clock_mode:={mode}', f'camera_rate:={camera_rate}',
                                   'joint_state_rate:=100.0', 'kuka_num_objects:=5'],
                           params_file=_params_file(robot))
    if not client.wait_for_subscribers(90) or (mode != 'lockstep' and not client.spin_until(
            lambda: client.joint_states, 60)):
        raise RuntimeError(f'{robot} driver did not come up:\n{sc.stop_driver(proc)[-3000:]}')
    return proc


def bench_realtime(robot: str, seconds: float) -> dict:
    client = sc.DriverClient('bench_realtime')
    watch = ClockWatch(client)
    proc = _start(robot, 'realtime', 10.0, client)
    try:
        names = _arm_names(robot)
        q0 = client.arm(names)
        client.spin_until(lambda: False, 2.0)   # warm-up
        client.joint_states.clear()
        client.images.clear()
        watch.armed = True
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            due = start + k * CONTROL_PERIOD
            client.spin_until(lambda d=due: time.monotonic() >= d, 1.0)
            q = q0 + 0.2 * np.sin(2 * np.pi * 0.25 * k * CONTROL_PERIOD)
            client.send_trajectory(names, [q], [CONTROL_PERIOD])
            client.send_gripper(_gripper(robot, k // 25))
            k += 1
        wall = time.monotonic() - start
        return {'robot': robot, 'mode': 'realtime', 'wall_s': round(wall, 2),
                'real_time_factor': round(watch.rate(), 3),
                'commands_hz': round(k / wall, 1),
                'joint_states_hz': round(len(client.joint_states) / wall, 1),
                'camera_hz': round(len(client.images) / wall, 2),
                'camera_frames_dropped': client.diag_values().get('camera_frames_dropped'),
                'driver_step_ms': client.diag_values().get('step_time_ms'),
                'rejected': client.diag_values().get('rejected_commands'),
                'loadavg_1m': round(os.getloadavg()[0], 2)}
    finally:
        sc.stop_driver(proc)
        client.destroy()


def bench_fast(robot: str, seconds: float, rounds: int = 3) -> dict:
    """Fast mode with a /joint_states subscriber (as a policy would be); rate from /diagnostics.

    Driver and bare simulator take turns (``rounds`` windows each, the driver deactivated while
    the bare one runs), so a machine whose load drifts affects both alike; medians reported.
    The driver's diagnostics carry its sim time and a wall-clock stamp, so this process need
    not read 100 /clock messages per sim second.
    """
    client = sc.DriverClient('bench_fast', topics=('/joint_states', '/diagnostics'))
    proc = sc.start_driver(robot, ['clock_mode:=fast', 'camera_rate:=0.0',
                                   'joint_state_rate:=100.0', 'kuka_num_objects:=5',
                                   'diagnostics_period:=0.25'], params_file=_params_file(robot))
    window = seconds / rounds
    driver_rates, bare_rates, driver_cpu, bare_cpu = [], [], [], []
    try:
        if not client.spin_until(lambda: len(client.diagnostics) >= 2, 90):
            raise RuntimeError(f'{robot} driver did not come up')
        for _ in range(rounds):
            client.spin_until(lambda: False, 0.5)
            first, cpu0 = _diag_sample(client), _cpu_seconds(proc.pid)
            client.spin_until(lambda: False, window)
            last, cpu1 = _diag_sample(client), _cpu_seconds(proc.pid)
            steps = (last[1] - first[1]) / CONTROL_PERIOD
            driver_rates.append(steps / (last[0] - first[0]))
            # CPU seconds of the whole driver process (DDS threads included) per step.
            driver_cpu.append(steps / (cpu1 - cpu0))
            client.transition(sc.TRANSITION_DEACTIVATE)
            wall_rate, cpu_rate = bare_steps_per_s(robot, window)
            bare_rates.append(wall_rate)
            bare_cpu.append(cpu_rate)
            client.transition(sc.TRANSITION_ACTIVATE)
    finally:
        sc.stop_driver(proc)
        client.destroy()
    driver, bare = float(np.median(driver_rates)), float(np.median(bare_rates))
    d_cpu, b_cpu = float(np.median(driver_cpu)), float(np.median(bare_cpu))
    return {'robot': robot, 'mode': 'fast', 'driver_steps_per_s': round(driver, 1),
            'bare_steps_per_s': round(bare, 1), 'fraction': round(driver / bare, 3),
            'driver_steps_per_cpu_s': round(d_cpu, 1), 'bare_steps_per_cpu_s': round(b_cpu, 1),
            'cpu_fraction': round(d_cpu / b_cpu, 3),
            'driver_windows': [round(r, 1) for r in driver_rates],
            'bare_windows': [round(r, 1) for r in bare_rates],
            'loadavg_1m': round(os.getloadavg()[0], 2)}


def _diag_sample(client: sc.DriverClient) -> tuple[float, float]:
    """(wall stamp, sim time) of the latest /diagnostics message."""
    msg = client.diagnostics[-1]
    values = {kv.key: kv.value for kv in msg.status[0].values}
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, float(values['sim_time'])


def bench_lockstep(robot: str, n_steps: int) -> dict:
    client = sc.DriverClient('bench_lockstep')
    proc = _start(robot, 'lockstep', 0.0, client)
    try:
        names = _arm_names(robot)
        client.reset()   # publishes the initial state (lock-step publishes nothing unasked)
        if not client.spin_until(lambda: client.joint_states, 10):
            raise RuntimeError('no state after reset')
        q = client.arm(names)
        start = time.monotonic()
        for k in range(n_steps):
            n = len(client.joint_states)
            client.send_gripper(_gripper(robot, k // 25))
            client.send_trajectory(names, [q], [CONTROL_PERIOD])
            if not client.spin_until(lambda n=n: len(client.joint_states) > n, 5.0):
                raise RuntimeError('lock-step driver stopped answering')
        wall = time.monotonic() - start
    finally:
        sc.stop_driver(proc)
        client.destroy()
    return {'robot': robot, 'mode': 'lockstep', 'round_trip_steps_per_s':
            round(n_steps / wall, 1)}


def bench_inprocess(robot: str, seconds: float) -> dict:
    """The driver node's fast loop inside this process, no subscribers: its own cost per step.

    Separates the driver's work (controller, physics, building and handing messages to DDS)
    from the cost of delivering them to other processes.
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from pick_place_rl.nodes.sim_driver import SimDriverNode
    overrides = [Parameter('robot', value=robot), Parameter('clock_mode', value='fast'),
                 Parameter('camera_rate', value=0.0),
                 Parameter('joint_state_rate', value=100.0)]
    node = SimDriverNode(parameter_overrides=overrides)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.trigger_configure()
        node.trigger_activate()
        sim0, cpu0, wall0 = node.core.time, time.process_time(), time.monotonic()
        while time.monotonic() - wall0 < seconds:
            node.spin_step(executor)
        steps = (node.core.time - sim0) / CONTROL_PERIOD
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        node.trigger_deactivate()
        node.trigger_cleanup()
    finally:
        executor.shutdown()
        node.destroy_node()
    bare_wall, bare_cpu = bare_steps_per_s(robot, seconds)
    return {'robot': robot, 'mode': 'inprocess', 'driver_steps_per_s': round(steps / wall, 1),
            'driver_steps_per_cpu_s': round(steps / cpu, 1),
            'bare_steps_per_s': round(bare_wall, 1), 'bare_steps_per_cpu_s': round(bare_cpu, 1),
            'cpu_fraction': round(steps / cpu / bare_cpu, 3),
            'loadavg_1m': round(os.getloadavg()[0], 2)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc), all its threads."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def bare_steps_per_s(robot: str, seconds: float) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second) of the bare simulator; step = 0.04 s."""
    if robot == 'fetch':
        from pick_place_rl.sim.registry import make_env
        env = make_env('FetchPickAndPlace-v4')
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        n, start, cpu = 0, time.monotonic(), time.process_time()
        while time.monotonic() - start < seconds:
            _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            n += 1
            if term or trunc:
                env.reset()
        rates = n / (time.monotonic() - start), n / (time.process_time() - cpu)
        env.close()
        return rates
    from pick_place_rl.sim import kuka_backend, kuka_scene
    client = kuka_scene.connect()
    scene = kuka_scene.KukaScene(client, kuka_scene.SceneConfig(
        time_step=kuka_backend.PHYSICS_STEP))
    scene.load_objects(5, 'train', np.random.default_rng(0))
    substeps = round(CONTROL_PERIOD / kuka_backend.PHYSICS_STEP)
    n, start, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - start < seconds:
        scene.set_arm_targets(np.asarray(kuka_scene.HOME_ARM) + 0.1 * np.sin(n / 25))
        scene.step(substeps)
        n += 1
    rates = n / (time.monotonic() - start), n / (time.process_time() - cpu)
    import pybullet as pb
    pb.disconnect(client)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--robots', nargs='+', default=['fetch', 'kuka'])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--lockstep-steps', type=int, default=250)
    parser.add_argument('--modes', nargs='+', default=['realtime', 'fast', 'lockstep'],
                        choices=['realtime', 'fast', 'lockstep', 'inprocess'])
    args = parser.parse_args(argv)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    rclpy.init()
    rows = []
    try:
        for robot in args.robots:
            for mode, bench, amount in (('realtime', bench_realtime, args.seconds),
                                        ('fast', bench_fast, args.seconds),
                                        ('lockstep', bench_lockstep, args.lockstep_steps),
                                        ('inprocess', bench_inprocess, args.seconds)):
                if mode not in args.modes:
                    continue
                row = bench(robot, amount)
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        rclpy.try_shutdown()
    load = os.getloadavg()
    print(json.dumps({'cpus': os.cpu_count(), 'loadavg_1m': round(load[0], 2),
                      'python': platform.python_version()}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
