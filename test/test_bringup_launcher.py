"""``pick-place-rl launch`` as users run it: bad input refused before anything starts, a real node
graph started, a crash reported, Ctrl-C stopping everything with no orphans."""
from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, '-m', 'pick_place_rl.cli']


def launch(*args: str, env: dict[str, str] | None = None, timeout: float = 60
           ) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, 'launch', *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != 'Z'


@pytest.mark.parametrize('args, message', [
    (['ur5_robot'], "unknown graph 'ur5_robot'"),
    (['sim_robot', 'robot:=ur5'], "robot:='ur5' is not one of 'fetch', 'kuka'"),
    (['real_robot', 'profile:=abb'], "profile:='abb' is not one of"),
    (['sim_robot', 'robot=fetch'], "expected name:=value, got 'robot=fetch'"),
    (['sim_robot', '--domain-id', '300'], 'ROS_DOMAIN_ID=300 is outside 0..232'),
    (['train', 'params_file:=no/such/file.yaml'], 'no/such/file.yaml does not exist'),
])
def test_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    proc = launch(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'started' not in proc.stderr, 'nothing may start on bad input'


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    """A policy parameter file naming weights that are not there (a fresh clone, say)."""
    share = tmp_path / 'share'
    (share / 'config').mkdir(parents=True)
    shutil.copy(ROOT / 'config' / 'fetch_sim.yaml', share / 'config')
    (share / 'config' / 'fetch_policy.yaml').write_text(
        'policy_node:\n  ros__parameters:\n    weights: models/fetch/actor.pt\n')
    env = dict(os.environ, PICK_PLACE_RL_SHARE=str(share))
    proc = launch('sim_robot', env=env)
    assert proc.returncode == 2, proc.stderr
    assert "weights file 'models/fetch/actor.pt' does not exist" in proc.stderr
    proc = launch('sim_robot', f'weights:={tmp_path}/nope.pt', env=env)
    assert proc.returncode == 2 and f"'{tmp_path}/nope.pt' does not exist" in proc.stderr


def test_show_args_and_print() -> None:
    proc = launch('sim_robot', '--show-args')
    assert proc.returncode == 0
    assert "robot:='fetch'" in proc.stdout and "choices: 'fetch', 'kuka'" in proc.stdout
    proc = launch('sim_robot', 'policy:=false', 'seed:=3', '--print')
    assert proc.returncode == 0, proc.stderr
    assert re.search(r'sim_driver --ros-args -r __node:=sim_driver --params-file \S+'
                     r'config/fetch_sim.yaml -p robot:=fetch -p autostart:=true '
                     r'-p clock_mode:=realtime -p seed:=3', proc.stdout), proc.stdout


class Launched:
    """A launcher subprocess whose merged output is collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*CLI, 'launch', *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                     stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip('\n'))

    @property
    def text(self) -> str:
        return '\n'.join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if self.proc.poll() is not None:
                time.sleep(0.2)
                found = re.search(pattern, self.text)
                if found:
                    return found
                break
            time.sleep(0.1)
        raise AssertionError(f'{pattern!r} not seen; output:\n{self.text[-4000:]}')

    def pids(self) -> dict[str, int]:
        return {m[0]: int(m[1]) for m in re.findall(r'started (\w+) \(pid (\d+)\)', self.text)}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.pids().values():
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.ros
def test_a_crashed_node_is_reported_and_stops_the_graph() -> None:
    """The real sim driver through the launcher, killed: reported, graph down, exit 1.

    (Ctrl-C with real nodes: test_bringup_e2e; with small processes: test_bringup_supervisor.)
    """
    run = Launched('sim_robot', 'policy:=false', '--no-clash-check')
    try:
        run.wait_for(r'\[sim_driver\] .*configured fetch', 90)
        os.kill(run.pids()['sim_driver'], signal.SIGKILL)
        run.wait_for(r'sim_driver crashed \(killed by SIGKILL\)', 20)
        assert run.proc.wait(timeout=30) == 1, 'a required node crashed: non-zero exit'
        assert 'sim_driver is required and crashed: stopping the graph' in run.text
    finally:
        run.close()


# A plain rclpy node of a given name, standing where a bring-up would put its node.
SQUATTER = textwrap.dedent("""
    import sys, rclpy
    from rclpy.node import Node
    rclpy.init()
    node = Node(sys.argv[1])
    print('up', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
""")


@pytest.mark.ros
def test_domain_clash_is_refused() -> None:
    squatter = subprocess.Popen([sys.executable, '-c', SQUATTER, 'sim_driver'],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout.readline().strip() == 'up'  # type: ignore[union-attr]
        proc = launch('sim_robot', 'policy:=false', timeout=45)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert '/sim_driver already running on ROS_DOMAIN_ID=' in proc.stderr
        assert 'started' not in proc.stderr
    finally:
        squatter.send_signal(signal.SIGINT)
        try:
            squatter.wait(timeout=10)
        except subprocess.TimeoutExpired:
            squatter.kill()
            squatter.wait()
