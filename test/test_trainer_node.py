"""The trainer node on the real ROS 2 graph: it runs as its own process (the console script, with
``--ros-args``, a parameters file and a node remap, the way ``ros2 run`` starts it); this test
process talks to it over Fast DDS: progress and diagnostics arrive, ``save`` writes an actor the
policy node's loader accepts, ``stop`` ends training cleanly with the final exports.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
import json
from pathlib import Path
import signal
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from rcl_interfaces.srv import GetParameters
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from pick_place_rl.nodes.policy_node import load_policy

pytestmark = pytest.mark.ros
NAME = 'test_trainer'
#: A tiny FetchPickAndPlace run (the task the policy node drives): an epoch takes a few
#: seconds; 1000 epochs = until stopped.
PARAMS = {'env_id': 'FetchPickAndPlace-v4', 'n_envs': 2, 'n_cycles': 2, 'n_batches': 2,
          'batch_size': 64, 'buffer_size': 20000, 'epochs': 1000, 'minutes': 10.0,
          'n_eval_episodes': 2, 'final_eval_episodes': 2, 'tensorboard': False,
          'progress': False, 'torch_threads': 1, 'async_envs': False, 'warmup_episodes': 0,
          'gamma': 0.95, 'diagnostics_period': 0.5}


def _params_file(path: Path, params: dict) -> Path:
    """ROS 2 parameters YAML (JSON is valid YAML), addressed to the remapped node name."""
    path.write_text(json.dumps({NAME: {'ros__parameters': params}}, indent=2))
    return path


def _start_node(tmp_path: Path, **overrides) -> subprocess.Popen:
    params = _params_file(tmp_path / 'params.yaml',
                          {**PARAMS, 'out_dir': str(tmp_path / 'run'), **overrides})
    script = Path(sys.executable).parent / 'trainer_node'
    assert script.exists(), 'trainer_node console script missing: run scripts/setup.sh'
    return subprocess.Popen([str(script), '--ros-args', '--params-file', str(params),
                             '-r', f'__node:={NAME}'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


class Client:
    """This test's own node in its own rclpy context (no global rclpy state is touched)."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('trainer_node_test_client', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.progress: list[dict] = []
        self.diagnostics: list = []
        latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, '/pick_place/train_progress',
                                      lambda m: self.progress.append(json.loads(m.data)),
                                      latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      lambda m: self.diagnostics.extend(m.status), 10)

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float,
                 proc: subprocess.Popen | None = None) -> object:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.1)
            found = predicate()
            if found:
                return found
            if proc is not None and proc.poll() is not None and not found:
                self.executor.spin_once(timeout_sec=0.5)
                found = predicate()
                if found:
                    return found
                pytest.fail(f'node exited ({proc.returncode}) before {what}:\n{_output(proc)}')
        pytest.fail(f'timed out after {timeout} s waiting for {what}; progress: '
                    f'{self.progress[-3:]}')

    def call(self, srv_type, name: str, request, proc: subprocess.Popen, timeout: float = 120):
        client = self.node.create_client(srv_type, name)
        self.wait_for(f'service {name}', lambda: client.service_is_ready(), 180, proc)
        future = client.call_async(request)
        return self.wait_for(f'reply of {name}', lambda: future.result(), timeout, proc)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _output(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        return '(still running)'
    return (out or '')[-4000:]


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def _state(client: Client, state: str, **values) -> Callable[[], dict | None]:
    def find() -> dict | None:
        for msg in client.progress:
            if msg['state'] == state and all(msg.get(k) == v for k, v in values.items()):
                return msg
        return None
    return find


def test_trainer_node_progress_save_stop(tmp_path: Path, client: Client) -> None:
    proc = _start_node(tmp_path)
    try:
        # parameters come from the file given with --ros-args, under the remapped name
        reply = client.call(GetParameters, f'/{NAME}/get_parameters',
                            GetParameters.Request(names=['n_envs', 'env_id', 'gamma']), proc)
        assert [v.integer_value for v in reply.values[:1]] == [2]
        assert reply.values[1].string_value == 'FetchPickAndPlace-v4'
        assert reply.values[2].double_value == pytest.approx(0.95)

        epoch = client.wait_for('a finished epoch', lambda: next(
            (m for m in client.progress if m['state'] == 'training' and m['epoch'] >= 1), None),
            240, proc)
        assert epoch['env_steps'] == 2 * 2 * 50 * epoch['epoch']
        assert 0.0 <= epoch['success_rate'] <= 1.0
        diag = client.wait_for('trainer diagnostics', lambda: next(
            (s for s in client.diagnostics if s.name.startswith(NAME)), None), 30, proc)
        assert diag.hardware_id == 'FetchPickAndPlace-v4'
        assert {kv.key for kv in diag.values} >= {'state', 'epoch', 'cycles', 'out_dir'}

        saved = client.call(Trigger, f'/{NAME}/save', Trigger.Request(), proc)
        assert saved.success, saved.message
        actor = Path(saved.message)
        assert actor == tmp_path / 'run' / 'actor.pt'
        assert (tmp_path / 'run' / 'checkpoint.pt').exists()
        policy = load_policy(str(actor))  # the policy node's own loader and shape checks
        action = policy(np.zeros(policy.obs_dim, np.float32), np.zeros(policy.goal_dim,
                                                                       np.float32))
        assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)

        stopped = client.call(Trigger, f'/{NAME}/stop', Trigger.Request(), proc)
        assert stopped.success, stopped.message
        finished = client.wait_for('the finished state', _state(client, 'finished'), 120, proc)
        assert finished['stopped'] is True
        assert proc.wait(timeout=60) == 0, _output(proc)
        metrics = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
        assert metrics['env_id'] == 'FetchPickAndPlace-v4' and metrics['epochs'] >= 1
        assert metrics['final']['episodes'] == 2
        assert (tmp_path / 'run' / 'curve.png').exists()
        load_policy(str(tmp_path / 'run' / 'actor.pt'))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_trainer_node_reports_bad_input(tmp_path: Path, client: Client) -> None:
    """An unknown env id: a clear error on the progress topic and in the exit code, no hang.

    ``shutdown_when_done`` is off so the failed node stays on the graph until this late
    subscriber has read its state; SIGINT then ends it with exit code 1.
    """
    proc = _start_node(tmp_path, env_id='FetchReech-v4', shutdown_when_done=False)
    try:
        failed = client.wait_for('the failed state', _state(client, 'failed'), 120, proc)
        assert 'FetchReech-v4' in failed['error']
        diag = client.wait_for('an ERROR diagnostic', lambda: next(
            (s for s in client.diagnostics if s.name.startswith(NAME)
             and s.level == DiagnosticStatus.ERROR), None), 30, proc)
        assert 'FetchReech-v4' in diag.message
        saved = client.call(Trigger, f'/{NAME}/save', Trigger.Request(), proc)
        assert not saved.success and 'failed' in saved.message
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 1, _output(proc)
        assert 'Traceback' not in _output(proc)
        assert not (tmp_path / 'run' / 'actor.pt').exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_wrong_parameter_type_is_a_one_line_error(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / 'trainer_node'
    proc = subprocess.run([str(script), '--ros-args', '-p', 'minutes:=fast'],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "trainer_node: invalid parameters: Trying to set parameter 'minutes'" in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_preset_then_explicit_parameters() -> None:
    """``preset`` replaces defaults; a parameter set away from its default still wins."""
    from pick_place_rl.nodes.trainer_node import merge_preset
    from pick_place_rl.train.ddpg_her import DDPGHerConfig, PRESETS

    config = merge_preset(DDPGHerConfig(n_batches=7), 'baseline')
    assert config.n_batches == 7
    assert config.n_envs == PRESETS['baseline']['n_envs']
    assert config.batch_size == PRESETS['baseline']['batch_size']
    assert merge_preset(DDPGHerConfig(), '') == DDPGHerConfig()
    with pytest.raises(ValueError, match='unknown preset'):
        merge_preset(DDPGHerConfig(), 'nope')


def test_trainer_node_hosts_the_dqn_trainer(tmp_path: Path, client: Client) -> None:
    """``algorithm: dqn-reacher``: the DQN trainer's own parameters, the same progress, save
    and finish; the exported Q-net loads with its kind checked.

    Two reacher epochs can end before a loaded machine has discovered the node's services, so
    ``shutdown_when_done`` is off and SIGINT ends the finished node (exit code 0).
    """
    from pick_place_rl.core.checkpoint import load_checkpoint
    from pick_place_rl.core.dqn_nets import KIND_MLP

    params = _params_file(tmp_path / 'params.yaml', {
        'algorithm': 'dqn-reacher', 'epochs': 2, 'steps_per_epoch': 200,
        'n_eval_episodes': 2, 'tensorboard': False, 'progress': False,
        'out_dir': str(tmp_path / 'run'), 'diagnostics_period': 0.5,
        'shutdown_when_done': False})
    script = Path(sys.executable).parent / 'trainer_node'
    proc = subprocess.Popen([str(script), '--ros-args', '--params-file', str(params),
                             '-r', f'__node:={NAME}'], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        reply = client.call(GetParameters, f'/{NAME}/get_parameters',
                            GetParameters.Request(names=['steps_per_epoch', 'env_id']), proc)
        assert reply.values[0].integer_value == 200
        assert reply.values[1].string_value == 'JointReacher-v0'
        finished = client.wait_for('the finished state', _state(client, 'finished'), 240, proc)
        assert finished['epoch'] == 2 and finished['env_steps'] == 400
        assert finished['actor'] == str(tmp_path / 'run' / 'qnet.pt')
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, _output(proc)
        payload = load_checkpoint(tmp_path / 'run' / 'qnet.pt', KIND_MLP)
        assert payload['spec']['env_id'] == 'JointReacher-v0'
        metrics = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
        assert metrics['epochs'] == 2 and (tmp_path / 'run' / 'curve.png').exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dqn_presets() -> None:
    from pick_place_rl.nodes.trainer_node import merge_preset
    from pick_place_rl.train.dqn import DQNReacherConfig

    config = DQNReacherConfig(lr=0.01)
    assert merge_preset(config, 'fast', 'dqn-reacher') == config
    with pytest.raises(ValueError, match="unknown preset 'baseline' for dqn-reacher"):
        merge_preset(config, 'baseline', 'dqn-reacher')
