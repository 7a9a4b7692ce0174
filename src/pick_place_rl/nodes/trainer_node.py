"""``trainer_node``: the trainers (DDPG+HER, DQN) behind ROS parameters, topics and services.

``algorithm`` (a :class:`TrainerNodeConfig` parameter, as in ``pick-place-rl train ALGO``)
picks the trainer; its parameters are generated from that trainer's config dataclass
(:class:`~pick_place_rl.train.ddpg_her.DDPGHerConfig`, or the ``pick_place_rl.train.dqn``
configs: one per field, same names as the CLI flags without dashes). Training runs in a worker
thread; the executor keeps serving services and timers meanwhile.

Interface:

* ``/pick_place/train_progress`` (std_msgs/String, JSON, reliable + transient local): one
  message per state change and per epoch, ``{"state": ..., "epoch": ..., "env_steps": ...,
  "success_rate": ..., ...}``; states are ``starting``, ``training``, ``stopping``, ``finished``,
  ``failed``.
* ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) every ``diagnostics_period`` s.
* ``~/save`` (std_srvs/Trigger): write ``checkpoint.pt`` and the policy file into ``out_dir``
  now (at the next cycle boundary while training); the message is the policy file's path.
* ``~/stop`` (std_srvs/Trigger): stop at the next cycle boundary, then export the policy file,
  ``metrics.json`` and ``curve.png`` as a finished run does.

The policy file is what the policy nodes load: ``out_dir/actor.pt`` for DDPG+HER
(``GoalPolicy.from_checkpoint``), ``out_dir/qnet.pt`` for DQN (``GraspPolicy``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
import json
import math
from pathlib import Path
import threading
import traceback

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.config import field
from pick_place_rl.nodes.params import declare_config, spin_node
from pick_place_rl.sim.registry import UnknownEnvError
from pick_place_rl.train.cli import ALGORITHMS, resolve_algorithm
from pick_place_rl.train.ddpg_her import PRESETS

PROGRESS_TOPIC = '/pick_place/train_progress'
BAD_INPUT = (UnknownEnvError, CheckpointError, ValueError)
STATES = ('starting', 'training', 'stopping', 'finished', 'failed')


#: the file each algorithm exports for the policy nodes
POLICY_FILES = {'ddpg-her': 'actor.pt'}


@dataclass(frozen=True)
class TrainerNodeConfig:
    """Parameters of the node itself (the trainer's come from its config dataclass)."""

    algorithm: str = field('ddpg-her', 'trainer, as in pick-place-rl train ALGO',
                           choices=tuple(ALGORITHMS))
    preset: str = field('', 'named trainer preset applied first (DDPG+HER: ' +
                        ', '.join(sorted(PRESETS)) + '; "fast" = the defaults, the only one '
                        'of the DQN trainers); parameters set to non-default values override '
                        'it; empty = none')
    diagnostics_period: float = field(1.0, 'seconds between /diagnostics messages')
    save_timeout: float = field(600.0, 'seconds a save request waits for the training thread '
                                       'to reach a cycle boundary')
    shutdown_when_done: bool = field(True, 'exit the node once training has finished or '
                                           'stopped (exit code 1 when it failed)')


def merge_preset(config, preset: str, algorithm: str = 'ddpg-her'):  # noqa: ANN001, ANN201
    """Preset values replace defaults; fields whose parameter differs from its default win."""
    if not preset:
        return config
    module, config_cls, _ = resolve_algorithm(algorithm)
    presets = getattr(module, 'PRESETS', {'fast': {}})
    if preset not in presets:
        raise ValueError(f'unknown preset {preset!r} for {algorithm}; choose from '
                         f'{sorted(presets)}')
    default = config_cls()
    base = replace(default, **presets[preset])
    explicit = {f.name: getattr(config, f.name) for f in fields(config_cls)
                if getattr(config, f.name) != getattr(default, f.name)}
    return replace(base, **explicit)


class TrainerNode(Node):
    """Thin adapter: parameters -> a trainer (DDPG+HER or DQN) in a thread; progress -> topics."""

    def __init__(self, **kwargs) -> None:
        # Set before Node.__init__: a failing parameter declaration below makes the context
        # call destroy_node() on this half-built node at shutdown.
        self._lock = threading.Lock()  # guards _status, _save_requests and _destroyed
        self._destroyed = False
        self._worker: threading.Thread | None = None
        self._trainer = None   # DDPGHerTrainer | DQNTrainer
        self._stop = threading.Event()
        self._done = threading.Event()
        super().__init__('trainer', **kwargs)
        self.node_config = nc = declare_config(self, TrainerNodeConfig)
        _, config_cls, self._trainer_cls = resolve_algorithm(nc.algorithm)
        self.config = merge_preset(declare_config(self, config_cls), nc.preset, nc.algorithm)
        self.policy_file = Path(self.config.out_dir) / POLICY_FILES.get(nc.algorithm, 'qnet.pt')
        self.exit_code = 0
        self._status: dict = {'state': 'starting', 'env_id': self.config.env_id,
                              'out_dir': self.config.out_dir, 'epoch': 0, 'cycles': 0}
        self._save_requests: list[tuple[threading.Event, dict]] = []

        latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.progress_pub = self.create_publisher(String, PROGRESS_TOPIC, latched)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        services = ReentrantCallbackGroup()  # save waits for the worker while others are served
        self.create_service(Trigger, '~/save', self._on_save, callback_group=services)
        self.create_service(Trigger, '~/stop', self._on_stop, callback_group=services)
        self.create_timer(self.node_config.diagnostics_period, self._publish_diagnostics)
        self._publish_progress()
        self._worker = threading.Thread(target=self._run, name='trainer', daemon=True)
        self._worker.start()
        self.get_logger().info(f'training {self.config.env_id} into {self.config.out_dir}')

    # training thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            trainer = self._trainer_cls(self.config)
            trainer.on_cycle = self._between_cycles
            trainer.on_epoch = self._after_epoch
            self._trainer = trainer  # before reading _stop: request_stop() reads in reverse
            if self._stop.is_set():
                trainer.stop.set()
            self._set_state('training', epoch=trainer.epoch, env_steps=trainer.env_steps)
            metrics = trainer.train()
            self._serve_saves()
            final = metrics.get('final', {})
            self._set_state('finished', epoch=trainer.epoch, env_steps=trainer.env_steps,
                            actor=str(self.policy_file),
                            final_success_rate=final.get('success_rate'),
                            stopped=self._stop.is_set())
        except Exception as exc:  # reported on the graph; the node must not die silently
            self.exit_code = 1
            # Bad input (env id, checkpoint, config) gets its message; anything else a traceback.
            detail = '' if isinstance(exc, BAD_INPUT) else '\n' + traceback.format_exc()
            self.get_logger().error(f'training failed: {exc}{detail}')
            self._set_state('failed', error=f'{type(exc).__name__}: {exc}')
            self._fail_saves(f'training failed: {exc}')
        finally:
            self._done.set()
            self._serve_saves()  # requests queued while the last epoch ended
            if self.node_config.shutdown_when_done:
                self._shutdown_soon()

    def _between_cycles(self) -> None:
        with self._lock:
            self._status['cycles'] += 1
        self._serve_saves()

    def _after_epoch(self, row: dict) -> None:
        self._set_state('training', **row)

    def _serve_saves(self) -> None:
        """Run pending save requests here, in the training thread, between updates."""
        with self._lock:
            requests, self._save_requests = self._save_requests, []
        for done, reply in requests:
            try:
                reply['path'] = str(self._save_now())
            except Exception as exc:
                reply['error'] = f'{type(exc).__name__}: {exc}'
            done.set()

    def _save_now(self) -> Path:
        if self._trainer is None:
            raise RuntimeError('the trainer was never created')
        self._trainer.out.mkdir(parents=True, exist_ok=True)
        self._trainer.save()
        self._trainer.export_actor(self.policy_file)
        return self.policy_file

    def _fail_saves(self, error: str) -> None:
        with self._lock:
            requests, self._save_requests = self._save_requests, []
        for done, reply in requests:
            reply['error'] = error
            done.set()

    # graph side ----------------------------------------------------------------------------
    def _set_state(self, state: str, **values) -> None:
        assert state in STATES, state
        with self._lock:
            self._status.update(values, state=state)
        self._publish_progress()

    def _snapshot(self) -> dict:
        with self._lock:
            return dict(self._status)

    def _publish_progress(self) -> None:
        if self.context.ok():
            text = json.dumps(_strict_json(self._snapshot()), default=_plain)
            self.progress_pub.publish(String(data=text))

    def _publish_diagnostics(self) -> None:
        status = self._snapshot()
        level = DiagnosticStatus.ERROR if status['state'] == 'failed' else DiagnosticStatus.OK
        message = status.get('error', status['state'])
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(
            level=level, name=f'{self.get_name()}: {self.node_config.algorithm} trainer',
            message=message,
            hardware_id=self.config.env_id,
            values=[KeyValue(key=k, value=_text(v)) for k, v in sorted(status.items())])]
        self.diag_pub.publish(msg)

    def _on_save(self, request: Trigger.Request, response: Trigger.Response,
                 ) -> Trigger.Response:
        if self._trainer is None or self._done.is_set():
            state = self._snapshot()['state']
            if self._trainer is None or state == 'failed':
                response.success, response.message = False, f'nothing to save ({state})'
                return response
            try:  # the training thread has ended: the trainer is idle and safe to read
                response.success, response.message = True, str(self._save_now())
            except Exception as exc:
                response.success, response.message = False, f'{type(exc).__name__}: {exc}'
            return response
        done, reply = threading.Event(), {}
        with self._lock:
            self._save_requests.append((done, reply))
        if self._done.is_set():  # the worker may have served its last requests before ours
            self._serve_saves()
        if not done.wait(self.node_config.save_timeout):
            response.success, response.message = False, 'timed out waiting for a cycle boundary'
        elif 'error' in reply:
            response.success, response.message = False, reply['error']
        else:
            response.success, response.message = True, reply['path']
            self.get_logger().info(f'saved {reply["path"]}')
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response,
                 ) -> Trigger.Response:
        self.request_stop()
        response.success = True
        response.message = ('already done' if self._done.is_set() else
                            'stopping at the next cycle boundary; actor.pt follows')
        return response

    def request_stop(self) -> None:
        """Stop at the next cycle boundary (thread-safe); the run then exports as usual."""
        self._stop.set()
        if self._trainer is not None:
            self._trainer.stop.set()
        if not self._done.is_set():
            self._set_state('stopping')

    def _shutdown_soon(self) -> None:
        """Let subscribers receive the final state, then end the spin."""
        if not self.context.ok():
            return
        self._publish_diagnostics()
        self.progress_pub.wait_for_all_acked(Duration(seconds=2.0))
        self.context.try_shutdown()

    def destroy_node(self) -> None:
        """Ctrl-C / SIGTERM: stop at a cycle boundary and let the trainer export first.

        Called from the main thread by ``spin_node`` and, when the worker ends the context
        itself, from the worker thread by ``Context.shutdown``; only the first call acts.
        """
        with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
        worker = self._worker
        if worker is not None:
            self.request_stop()
            if worker.is_alive() and threading.current_thread() is not worker:
                worker.join(timeout=300.0)
        super().destroy_node()


def _strict_json(status: dict) -> dict:
    """NaN/inf (e.g. no success metric on Pendulum) become null: strict JSON for any reader."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in status.items()}


def _plain(value):
    """numpy scalars (and anything else) in a progress row as JSON-friendly values."""
    return value.item() if hasattr(value, 'item') else str(value)


def _text(value) -> str:
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.6g}'
    return str(value)


def main(args: list[str] | None = None) -> int:
    nodes: list[TrainerNode] = []

    def factory() -> TrainerNode:
        nodes.append(TrainerNode())
        return nodes[-1]

    # spin_node turns a bad parameter into a one-line message and exit code 2
    code = spin_node(factory, args, executor_cls=lambda: MultiThreadedExecutor(num_threads=4))
    if code:
        return code
    return nodes[0].exit_code if nodes else 1


if __name__ == '__main__':
    raise SystemExit(main())
