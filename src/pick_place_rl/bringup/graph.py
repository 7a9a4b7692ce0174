"""The node graphs of this package: the one description that bring-up reads.

``launch/*.launch.py`` (for ``ros2 launch`` on a ROS 2 install) and ``pick-place-rl launch``
(the supervisor for machines without a ROS distro) both build their processes from
:data:`GRAPHS` through :func:`plan`, so the two cannot drift apart: same nodes, parameter files,
parameter overrides, remaps and respawn policy. This module is plain data plus a resolver; it
imports neither ``launch`` nor ``rclpy``.

Templates in a node description: a parameter override whose value is exactly ``'{arg}'`` takes
the launch argument ``arg`` converted to the argument's type; ``'{arg?}'`` does the same but
drops the override when the argument is empty (the parameter files then decide). Other strings
containing ``{arg}`` are formatted as text (parameter file paths, remap targets).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
from typing import Any

PACKAGE = 'pick_place_rl'
BOOL_CHOICES = ('true', 'false')
#: trainer presets (pick_place_rl.train.ddpg_her.PRESETS; a test keeps the two equal without
#: this module importing torch)
TRAIN_PRESETS = ('baseline', 'fast', 'pendulum', 'reach')
#: trainer algorithms (pick_place_rl.train.cli.ALGORITHMS; a test keeps the two equal)
TRAIN_ALGORITHMS = ('ddpg-her', 'dqn-grasp', 'dqn-pixel', 'dqn-reacher')


class GraphError(ValueError):
    """Bad bring-up input (unknown graph/argument/choice, missing file): a one-line message."""


@dataclass(frozen=True)
class Argument:
    """A launch argument (``name:=value``), as ``DeclareLaunchArgument`` declares it."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()
    type: str = 'str'  # str | bool | int | float: how '{name}' overrides are typed


@dataclass(frozen=True)
class Select:
    """A parameter value chosen by a launch argument's value (``mapping[argument value]``)."""

    argument: str
    mapping: Mapping[str, Any]


@dataclass(frozen=True)
class Profile:
    """Settings chosen by one value of a profile argument (e.g. a real robot driver stack)."""

    params_files: tuple[str, ...]
    remaps: tuple[tuple[str, str], ...] = ()
    description: str = ''


@dataclass(frozen=True)
class NodeSpec:
    """One node process: ``ros2 run pick_place_rl <executable> --ros-args ...``."""

    name: str
    executable: str | Select   # a Select picks it by a launch argument
    params_files: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    remaps: tuple[tuple[str, str], ...] = ()
    namespace: str = ''
    #: launch argument that must be 'true' for the node to start ('' = always)
    when: str = ''
    #: profile argument whose Profile adds a parameter file and remaps ('' = none)
    profile_arg: str = ''
    #: parameters naming files that must exist before anything starts (e.g. weights)
    file_params: tuple[str, ...] = ()
    respawn: bool = False
    #: boolean launch argument that turns respawn on ('' = none)
    respawn_arg: str = ''
    respawn_delay: float = 2.0
    #: when it exits, the whole graph stops (ros2 launch: on_exit=Shutdown)
    required: bool = True


@dataclass(frozen=True)
class Graph:
    """A bring-up: its arguments, its nodes, and the profiles its profile argument selects."""

    description: str
    arguments: tuple[Argument, ...]
    nodes: tuple[NodeSpec, ...]
    profiles: Mapping[str, Mapping[str, Profile]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedNode:
    """A node with every template resolved: what the launch file and the launcher start."""

    name: str
    executable: str
    namespace: str
    params_files: tuple[str, ...]   # absolute paths
    parameters: dict[str, Any]      # overrides, applied after the files
    remaps: tuple[tuple[str, str], ...]
    respawn: bool
    respawn_delay: float
    required: bool

    @property
    def fqn(self) -> str:
        """Fully qualified node name, as it appears on the graph."""
        ns = '/' + self.namespace.strip('/') if self.namespace.strip('/') else ''
        return f'{ns}/{self.name}'


ROBOTS = ('fetch', 'kuka')
CLOCK_MODES = ('realtime', 'fast', 'lockstep')

_SIM_ARGS = (
    Argument('robot', 'fetch', 'simulated robot: fetch (MuJoCo Fetch pick-and-place scene) or '
             'kuka (PyBullet KUKA iiwa over a tray of objects); the policy node runs '
             'config/<robot>_policy.yaml', ROBOTS),
    Argument('policy', 'true', 'start the policy node next to the simulated robot', BOOL_CHOICES,
             'bool'),
    Argument('weights', '', 'policy weights file (actor.pt / grasp net); empty = the shipped '
             'model named in config/<robot>_policy.yaml'),
    Argument('clock_mode', 'realtime', 'sim driver clock: realtime (paced to the wall clock), '
             'fast (as fast as the CPU allows) or lockstep (one step per command)', CLOCK_MODES),
    Argument('use_sim_time', 'true', 'nodes follow /clock from the simulator', BOOL_CHOICES,
             'bool'),
    Argument('seed', '0', 'seed of the first simulated episode', type='int'),
    Argument('respawn', 'false', 'restart the policy node when it exits', BOOL_CHOICES, 'bool'),
)

_REAL_PROFILES = {
    'kuka_drivers': Profile(
        ('config/real_kuka_drivers.yaml',),
        (('/arm_controller/joint_trajectory', '/joint_trajectory_controller/joint_trajectory'),),
        'KUKA iiwa through kroshu/kuka_drivers (joint_1..joint_7)'),
    'lbr_fri': Profile(
        ('config/real_lbr_fri.yaml',),
        (('/joint_states', '/lbr/joint_states'),
         ('/arm_controller/joint_trajectory', '/lbr/joint_trajectory_controller/joint_trajectory'),
         ('/gripper_controller/commands', '/lbr/gripper_controller/commands')),
        'KUKA LBR iiwa/Med through lbr_fri_ros2_stack (/lbr namespace, lbr_A1..lbr_A7)'),
    'fetch': Profile(
        ('config/fetch_policy.yaml', 'config/real_fetch.yaml'), (),
        'Fetch mobile manipulator (its own stack is ROS 1: needs ros1_bridge plus a trajectory '
        'topic-to-action relay, or a ROS 2 port)'),
}

GRAPHS: dict[str, Graph] = {
    'sim_robot': Graph(
        'a simulated robot on the ROS 2 graph (headless, offscreen camera) and the policy node',
        _SIM_ARGS,
        (
            NodeSpec('sim_driver', 'sim_driver', ('config/{robot}_sim.yaml',),
                     {'robot': '{robot}', 'autostart': True, 'clock_mode': '{clock_mode}',
                      'seed': '{seed}'}),
            # Fetch: the DDPG+HER pick-and-place actor; KUKA: the DQN grasp net (grasp_node),
            # under the same node name, topics and services.
            NodeSpec('policy_node', Select('robot', {'fetch': 'policy_node',
                                                     'kuka': 'grasp_node'}),
                     ('config/{robot}_policy.yaml',),
                     {'weights': '{weights?}', 'use_sim_time': '{use_sim_time}',
                      # lock-step: act once per simulator step, not on a timer
                      'trigger': Select('clock_mode', {'realtime': 'timer', 'fast': 'timer',
                                                       'lockstep': 'joint_states'})},
                     when='policy', file_params=('weights',), respawn_arg='respawn'),
        ),
    ),
    'real_robot': Graph(
        'the policy node alone, driving a real robot whose driver stack is already running',
        (
            Argument('profile', 'kuka_drivers', 'real robot driver stack: ' + '; '.join(
                f'{k} = {p.description}' for k, p in _REAL_PROFILES.items()),
                tuple(_REAL_PROFILES)),
            Argument('weights', '', 'policy weights file; empty = the one named in the profile'),
            Argument('urdf', '', "the robot's URDF (joint names as in the profile); empty = the "
                     "one named in the profile"),
            Argument('use_sim_time', 'false', 'follow /clock (false on hardware)', BOOL_CHOICES,
                     'bool'),
            Argument('respawn', 'false', 'restart the policy node when it exits', BOOL_CHOICES,
                     'bool'),
        ),
        (
            NodeSpec('policy_node', 'policy_node', (),
                     {'weights': '{weights?}', 'urdf': '{urdf?}',
                      'use_sim_time': '{use_sim_time}'},
                     profile_arg='profile', file_params=('weights', 'urdf'),
                     respawn_arg='respawn'),
        ),
        {'profile': _REAL_PROFILES},
    ),
    'train': Graph(
        'the trainer node, DDPG+HER or DQN (progress on /pick_place/train_progress)',
        (
            Argument('algorithm', 'ddpg-her', 'trainer (as in pick-place-rl train ALGO)',
                     TRAIN_ALGORITHMS),
            Argument('preset', 'fast',
                     'named trainer preset (pick_place_rl.train.ddpg_her.PRESETS; the DQN '
                     'trainers have fast only: their defaults)',
                     TRAIN_PRESETS),
            Argument('env_id', '', "gymnasium environment id; empty = the preset's"),
            Argument('minutes', '60', 'wall-clock training budget, minutes', type='float'),
            Argument('seed', '0', 'seed of envs, networks and evaluation', type='int'),
            Argument('out_dir', 'runs/ddpg_her', 'checkpoints, logs, curves, metrics'),
            Argument('params_file', '', 'extra trainer parameter file applied last (optional)'),
        ),
        (
            NodeSpec('trainer', 'trainer_node', ('{params_file?}',),
                     {'algorithm': '{algorithm}', 'preset': '{preset}', 'env_id': '{env_id?}',
                      'minutes': '{minutes}',
                      'seed': '{seed}', 'out_dir': '{out_dir}'}),
        ),
    ),
}

_TEMPLATE = re.compile(r'^\{(\w+)(\??)\}$')


def share_dir(prefer_installed: bool = False) -> Path:
    """Folder holding ``config/``, ``launch/``, ``models/``: a source checkout or colcon share.

    ``PICK_PLACE_RL_SHARE`` wins. A source checkout (editable install) is found next to this
    module; a colcon install through the ament index. ``ros2 launch`` prefers the installed one.
    """
    if os.environ.get('PICK_PLACE_RL_SHARE'):
        return Path(os.environ['PICK_PLACE_RL_SHARE'])
    checkout = Path(__file__).resolve().parents[3]

    def installed() -> Path | None:
        try:
            from ament_index_python.packages import get_package_share_directory
            return Path(get_package_share_directory(PACKAGE))
        except Exception:  # not in the index (or no ament_index_python): not installed
            return None

    in_checkout = (checkout / 'package.xml').is_file() and (checkout / 'config').is_dir()
    if prefer_installed or not in_checkout:
        found = installed()
        if found is not None:
            return found
    return checkout


def resolve_arguments(graph_name: str, given: Mapping[str, str]) -> dict[str, str]:
    """Defaults plus ``given``, checked: unknown names and values outside choices are errors."""
    graph = get_graph(graph_name)
    known = {a.name: a for a in graph.arguments}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise GraphError(f'{graph_name}: unknown argument(s) {", ".join(unknown)}; '
                         f'arguments: {", ".join(known)}')
    values = {name: str(given.get(name, arg.default)) for name, arg in known.items()}
    for name, value in values.items():
        arg = known[name]
        if arg.choices and value not in arg.choices:
            raise GraphError(f'{graph_name}: {name}:={value!r} is not one of '
                             f'{", ".join(repr(c) for c in arg.choices)}')
        _typed(arg, value)
    return values


def get_graph(graph_name: str) -> Graph:
    if graph_name not in GRAPHS:
        raise GraphError(f'unknown graph {graph_name!r}; choose from {", ".join(GRAPHS)}')
    return GRAPHS[graph_name]


def _typed(arg: Argument, value: str) -> Any:
    try:
        if arg.type == 'bool':
            if value.lower() not in BOOL_CHOICES:
                raise ValueError('expected true or false')
            return value.lower() == 'true'
        if arg.type == 'int':
            return int(value)
        if arg.type == 'float':
            return float(value)
    except ValueError as exc:
        raise GraphError(f'{arg.name}:={value!r}: {exc}') from None
    return value


def _substitute(text: str, args: Mapping[str, str]) -> str:
    try:
        return text.replace('?}', '}').format(**args)
    except KeyError as exc:
        raise GraphError(f'template {text!r} names no argument {exc}') from None


def plan(graph_name: str, given: Mapping[str, str] | None = None,
         share: Path | None = None, check_files: bool = True) -> list[PlannedNode]:
    """The nodes ``graph_name`` starts for the arguments ``given``, every template resolved.

    Raises :class:`GraphError` for unknown arguments or choices and (``check_files``) for a
    missing parameter file or a missing file named by a ``file_params`` parameter.
    """
    graph = get_graph(graph_name)
    args = resolve_arguments(graph_name, given or {})
    arg_by_name = {a.name: a for a in graph.arguments}
    share = share_dir() if share is None else share
    planned = []
    for spec in graph.nodes:
        if spec.when and not _typed(arg_by_name[spec.when], args[spec.when]):
            continue
        files = [_substitute(f, args) for f in spec.params_files]
        remaps = [(_substitute(a, args), _substitute(b, args)) for a, b in spec.remaps]
        if spec.profile_arg:
            profile = graph.profiles[spec.profile_arg][args[spec.profile_arg]]
            files.extend(profile.params_files)
            remaps.extend(profile.remaps)
        paths = tuple(str(_absolute(f, share)) for f in files if f)
        parameters: dict[str, Any] = {}
        for key, value in spec.overrides.items():
            match = _TEMPLATE.match(value) if isinstance(value, str) else None
            if isinstance(value, Select):
                parameters[key] = value.mapping[args[value.argument]]
            elif match is None:
                parameters[key] = _substitute(value, args) if isinstance(value, str) else value
            elif not (match.group(2) and args[match.group(1)] == ''):
                parameters[key] = _typed(arg_by_name[match.group(1)], args[match.group(1)])
        respawn = spec.respawn or bool(spec.respawn_arg and _typed(
            arg_by_name[spec.respawn_arg], args[spec.respawn_arg]))
        executable = spec.executable
        if isinstance(executable, Select):
            executable = executable.mapping[args[executable.argument]]
        node = PlannedNode(spec.name, executable, spec.namespace, paths, parameters,
                           tuple(remaps), respawn, spec.respawn_delay, spec.required)
        if check_files:
            _check_files(node, spec, share)
        planned.append(node)
    return planned


_FILE_HINTS = {
    'weights': 'train them (`pick-place-rl train`, see README) or pass weights:=PATH',
    'urdf': "pass urdf:=PATH, the robot's own URDF with the profile's joint names",
}


def _absolute(path: str, share: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else share / p


def _check_files(node: PlannedNode, spec: NodeSpec, share: Path) -> None:
    for path in node.params_files:
        if not Path(path).is_file():
            raise GraphError(f'{node.name}: parameter file {path} does not exist')
    values = file_parameters(node)
    values.update(node.parameters)
    for name in spec.file_params:
        value = values.get(name)
        hint = _FILE_HINTS.get(name, f'pass {name}:=PATH')
        if not value:
            raise GraphError(f'{node.name}: no {name} file given: {hint}')
        if not _absolute(str(value), share).is_file():
            raise GraphError(f'{node.name}: {name} file {value!r} does not exist: {hint}')


def file_parameters(node: PlannedNode) -> dict[str, Any]:
    """Parameter values the node's files give it (``/**`` and its own name), later files win."""
    import yaml

    values: dict[str, Any] = {}
    for path in node.params_files:
        with open(path, encoding='utf-8') as f:
            content = yaml.safe_load(f) or {}
        for key in ('/**', node.name, node.fqn, node.fqn.lstrip('/')):
            section = content.get(key)
            if isinstance(section, dict):
                values.update(section.get('ros__parameters') or {})
    return values
