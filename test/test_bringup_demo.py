"""``pick-place-rl demo`` end to end: bring-up, seeded goals, per-goal results, success rate,
an MCAP recording that the standard ROS 2 MCAP reader decodes, the animation; and the failure
paths: bad input, a node dying mid-demo (exit 1, nothing left running)."""
from __future__ import annotations

from collections import Counter
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import pytest

from test_bringup_launcher import _alive, ROOT
from test_policy_node import actor_checkpoint

CLI = [sys.executable, '-m', 'pick_place_rl.cli', 'demo']


def _children(pid: int) -> dict[int, str]:
    """Descendants of ``pid`` (from /proc) with their command lines."""
    parents: dict[int, int] = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = {}, [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                try:
                    found[child] = (Path(f'/proc/{child}/cmdline').read_bytes()
                                    .replace(b'\0', b' ').decode())
                except FileNotFoundError:
                    continue
                frontier.append(child)
    return found


@pytest.mark.ros
@pytest.mark.slow
def test_demo_runs_goals_records_and_animates(tmp_path: Path) -> None:
    from mcap_ros2.reader import read_ros2_messages

    weights = actor_checkpoint(tmp_path / 'actor.pt')  # random actor: the pipeline, not skill
    out = tmp_path / 'demo'
    proc = subprocess.run([*CLI, '--goals', '2', '--seed', '5', '--weights', str(weights),
                           '--record', '--out-dir', str(out), '--episode-timeout', '120'],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    goal_lines = [ln for ln in lines if ln.startswith('goal ')]
    assert len(goal_lines) == 2 and 'seed 5' in goal_lines[0] and 'seed 6' in goal_lines[1]
    assert all(' steps' in ln and ' s ' in ln for ln in goal_lines), goal_lines
    assert any(ln.startswith('success rate: ') for ln in lines)

    results = json.loads((out / 'demo_results.json').read_text())
    assert results['seeds'] == [5, 6] and len(results['episodes']) == 2
    assert results['success_rate'] == sum(e['success'] for e in results['episodes']) / 2
    for episode in results['episodes']:
        assert episode['result'] in ('success', 'failure') and len(episode['goal']) == 3

    # The demo's numbers are the closed-loop benchmark's: in lock-step the episodes through ROS
    # end where the same actor's in-process joint loop ends on the same seeds.
    from pick_place_rl.core.policy import GoalPolicy
    from pick_place_rl.train.policy_eval import joint_sim_episodes
    reference = joint_sim_episodes(GoalPolicy.from_checkpoint(weights), [5, 6],
                                   ROOT / 'urdf' / 'fetch.urdf')
    for ros, local in zip(results['episodes'], reference):
        assert (ros['success'], ros['steps']) == (local['success'], local['steps'])
        assert abs(ros['distance'] - local['distance']) < 1e-3, (ros, local)

    # The recording: decoded by mcap-ros2-support from the schemas in the file alone.
    counts: Counter[str] = Counter()
    statuses = []
    goals = []
    for m in read_ros2_messages(str(out / 'demo.mcap')):
        counts[m.channel.topic] += 1
        if m.channel.topic == '/pick_place/status':
            statuses.append(json.loads(m.ros_msg.data))
        elif m.channel.topic == '/pick_place/goal':
            p = m.ros_msg.pose.position
            goals.append([p.x, p.y, p.z])
        elif m.channel.topic == '/joint_states':
            assert m.schema.name == 'sensor_msgs/msg/JointState'
            assert 'robot0:shoulder_pan_joint' in m.ros_msg.name
    assert goals == [e['goal'] for e in results['episodes']]
    finals = [s['result'] for s in statuses if s['result'] in ('success', 'failure')]
    assert finals[-2:] == [e['result'] for e in results['episodes']]
    for topic in ('/joint_states', '/pick_place/object_pose', '/arm_controller/joint_trajectory',
                  '/gripper_controller/commands', '/camera/image_raw', '/clock'):
        assert counts[topic] > 0, f'{topic} not recorded: {counts}'
    assert counts['/arm_controller/joint_trajectory'] >= 2 * 10

    from PIL import Image
    gif = Image.open(out / 'demo.gif')
    assert gif.n_frames > 5 and gif.size == (320, 240)
    assert Image.open(out / 'demo.png').size == (320, 240)


def test_demo_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, '--weights', str(tmp_path / 'missing.pt'), '--out-dir',
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'missing.pt' in proc.stderr and 'does not exist' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize('how', ['node-dies', 'ctrl-c'])
def test_demo_stops_cleanly(tmp_path: Path, how: str) -> None:
    """A node killed mid-demo: exit 1 with the crash named; Ctrl-C: exit 130. Either way no
    node process is left."""
    weights = actor_checkpoint(tmp_path / 'actor.pt')
    proc = subprocess.Popen([*CLI, '--goals', '20', '--weights', str(weights), '--out-dir',
                             str(tmp_path / 'demo'), '--no-animation'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    nodes: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 300
        while not any(ln.startswith('goal  1/') for ln in lines):
            assert proc.poll() is None and time.monotonic() < deadline, ''.join(lines)
            time.sleep(0.2)
        nodes = {p: c for p, c in _children(proc.pid).items()
                 if 'sim_driver' in c or 'policy_node' in c}
        assert len(nodes) == 2, nodes
        if how == 'node-dies':
            (driver,) = [p for p, c in nodes.items() if 'sim_driver' in c]
            os.kill(driver, signal.SIGKILL)
            assert proc.wait(timeout=120) == 1, ''.join(lines)
            assert 'sim_driver crashed' in ''.join(lines) and 'FAILED' in ''.join(lines)
        else:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130, ''.join(lines)
            assert 'demo: interrupted' in ''.join(lines)
        text = ''.join(lines)
        assert 'Traceback' not in text, text[-3000:]
        assert not any(_alive(p) for p in nodes), 'a node outlived the demo'
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in nodes:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
