"""The launch files and ``pick-place-rl launch`` describe the same node graph.

``launch``/``launch_ros`` are not installable without a ROS distro, so the launch files are
checked by their syntax tree (each is ``return generate('<graph>')`` over the shared description),
and the two translations of a planned node — ``launch_ros.actions.Node`` keyword arguments and
the launcher's ``--ros-args`` command line — are compared for every combination of the fixed
argument choices: same node, executable, parameter files, parameter values and remaps.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import itertools
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest
import yaml

from pick_place_rl.bringup import graph as g
from pick_place_rl.bringup.ros_launch import node_kwargs
from pick_place_rl.launcher import ros_args

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))

#: executable -> the config dataclasses whose fields are its parameters (module, class)
NODE_CONFIGS = {
    'sim_driver': [('pick_place_rl.nodes.sim_driver', 'SimDriverConfig')],
    'trainer_node': [('pick_place_rl.nodes.trainer_node', 'TrainerNodeConfig'),
                     ('pick_place_rl.train.ddpg_her', 'DDPGHerConfig')],
    'policy_node': [('pick_place_rl.nodes.policy_node', 'PolicyNodeConfig')],
    'grasp_node': [('pick_place_rl.nodes.grasp_node', 'GraspNodeConfig')],
}


def combinations(name: str) -> list[dict[str, str]]:
    """Every combination of the fixed choices of a graph's arguments."""
    fixed = [a for a in g.GRAPHS[name].arguments if a.choices]
    return [dict(zip([a.name for a in fixed], values))
            for values in itertools.product(*[a.choices for a in fixed])]


def parse_ros_args(argv: list[str]) -> dict[str, Any]:
    """The launcher's command line read back the way rcl reads it."""
    args = argv[argv.index('--ros-args') + 1:]
    out: dict[str, Any] = {'name': None, 'namespace': None, 'files': [], 'parameters': {},
                           'remaps': []}
    it = iter(args)
    for flag in it:
        value = next(it)
        if flag == '--params-file':
            out['files'].append(value)
        elif flag == '-p':
            key, _, text = value.partition(':=')
            out['parameters'][key] = yaml.safe_load(text)
        elif flag == '-r':
            src, _, dst = value.partition(':=')
            if src == '__node':
                out['name'] = dst
            elif src == '__ns':
                out['namespace'] = dst.lstrip('/')
            else:
                out['remaps'].append((src, dst))
        else:
            raise AssertionError(f'unexpected ROS argument {flag}')
    return out


def test_one_launch_file_per_graph() -> None:
    assert sorted(p.name.removesuffix('.launch.py') for p in LAUNCH_FILES) == sorted(g.GRAPHS)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_builds_from_the_shared_description(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert 'launch' in imports, 'a launch file for ros2 launch imports launch'
    assert 'pick_place_rl.bringup.ros_launch' in imports
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(funcs) == {'generate_launch_description'}
    (ret,) = [n for n in ast.walk(funcs['generate_launch_description'])
              if isinstance(n, ast.Return)]
    call = ret.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    assert call.func.id == 'generate'
    assert [ast.literal_eval(a) for a in call.args] == [path.name.removesuffix('.launch.py')]
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Name)}
    assert called == {'generate'}, 'nodes must come from the shared description only'


@pytest.mark.parametrize('name', sorted(g.GRAPHS))
def test_arguments_are_documented(name: str) -> None:
    for arg in g.GRAPHS[name].arguments:
        assert len(arg.description) > 15, f'{name}:{arg.name} needs a description'
        if arg.type == 'bool':
            assert arg.choices == g.BOOL_CHOICES, f'{name}:{arg.name} is boolean: choices'
        assert not arg.choices or arg.default in arg.choices
        g._typed(arg, arg.default)
    arguments = {a.name: a for a in g.GRAPHS[name].arguments}
    for spec in g.GRAPHS[name].nodes:
        for key, value in spec.overrides.items():
            if isinstance(value, g.Select):
                assert set(value.mapping) == set(arguments[value.argument].choices), key


@pytest.mark.parametrize('name', sorted(g.GRAPHS))
def test_launch_actions_and_launcher_command_lines_agree(name: str) -> None:
    seen = 0
    for given in combinations(name):
        for node in g.plan(name, given, share=ROOT, check_files=False):
            kwargs = node_kwargs(node)
            cmd = parse_ros_args(ros_args(node))
            assert kwargs['package'] == 'pick_place_rl'
            assert kwargs['executable'] == node.executable
            assert cmd['name'] == kwargs['name'] == node.name
            assert cmd['namespace'] == kwargs['namespace']
            files = [p for p in kwargs['parameters'] if isinstance(p, str)]
            dicts = [p for p in kwargs['parameters'] if isinstance(p, dict)]
            assert cmd['files'] == files
            assert cmd['parameters'] == (dicts[0] if dicts else {})
            assert kwargs['parameters'] == files + dicts, 'files first, overrides last'
            assert cmd['remaps'] == [tuple(r) for r in kwargs['remappings']]
            seen += 1
    assert seen > 0


def test_arguments_reach_the_nodes() -> None:
    """Spot checks that the templates resolve as documented."""
    (driver, policy) = g.plan('sim_robot', {'robot': 'kuka', 'clock_mode': 'fast'},
                              share=ROOT, check_files=False)
    assert driver.parameters == {'robot': 'kuka', 'autostart': True, 'clock_mode': 'fast',
                                 'seed': 0}
    assert driver.params_files == (str(ROOT / 'config' / 'kuka_sim.yaml'),)
    assert 'weights' not in policy.parameters, 'empty weights:= leaves the file value'
    assert policy.parameters['use_sim_time'] is True
    assert policy.parameters['trigger'] == 'timer'
    (_, policy) = g.plan('sim_robot', {'clock_mode': 'lockstep'}, share=ROOT, check_files=False)
    assert policy.parameters['trigger'] == 'joint_states'
    (only,) = g.plan('sim_robot', {'policy': 'false', 'seed': '7'}, share=ROOT,
                     check_files=False)
    assert only.name == 'sim_driver' and only.parameters['seed'] == 7
    driver, policy = g.plan('sim_robot', {'respawn': 'true'}, share=ROOT, check_files=False)
    assert policy.respawn and not driver.respawn, "respawn:= is the policy node's"
    (lbr,) = g.plan('real_robot', {'profile': 'lbr_fri', 'respawn': 'true'}, share=ROOT,
                    check_files=False)
    assert ('/joint_states', '/lbr/joint_states') in lbr.remaps and lbr.respawn
    assert lbr.params_files[-1].endswith('config/real_lbr_fri.yaml')
    (trainer,) = g.plan('train', {'env_id': 'FetchReach-v4', 'minutes': '2'}, share=ROOT,
                        check_files=False)
    assert trainer.parameters['env_id'] == 'FetchReach-v4'
    assert trainer.parameters['minutes'] == 2.0 and isinstance(trainer.parameters['minutes'],
                                                                float)


@pytest.mark.parametrize('given, message', [
    ({'robot': 'ur5'}, "robot:='ur5' is not one of"),
    ({'robto': 'fetch'}, 'unknown argument(s) robto'),
    ({'seed': 'x'}, "seed:='x'"),
    ({'policy': 'yes'}, "policy:='yes' is not one of"),
])
def test_bad_arguments_are_rejected(given: dict[str, str], message: str) -> None:
    with pytest.raises(g.GraphError, match=None) as info:
        g.plan('sim_robot', given, share=ROOT, check_files=False)
    assert message in str(info.value)


def test_train_presets_match_the_trainer() -> None:
    from pick_place_rl.train.ddpg_her import PRESETS
    assert sorted(g.TRAIN_PRESETS) == sorted(PRESETS)
    from pick_place_rl.train.cli import ALGORITHMS
    assert sorted(g.TRAIN_ALGORITHMS) == sorted(ALGORITHMS)


def _all_plans() -> list[tuple[str, g.PlannedNode]]:
    return [(name, node) for name in g.GRAPHS for given in combinations(name)
            for node in g.plan(name, given, share=ROOT, check_files=False)]


def test_parameter_files_exist_and_are_ros_parameter_files() -> None:
    for name, node in _all_plans():
        for path in node.params_files:
            assert Path(path).is_file(), f'{name}: {node.name} needs {path}'
            content = yaml.safe_load(Path(path).read_text())
            sections = [k for k in content if k in ('/**', node.name)]
            assert sections, f'{path}: no section for node {node.name} (or /**)'
            for key in sections:
                assert set(content[key]) == {'ros__parameters'}, path


def test_every_parameter_is_one_the_node_declares() -> None:
    """No parameter file or override sets something that no node reads (a typo is silent)."""
    for name, node in _all_plans():
        declared = {'use_sim_time'}
        for module, cls in NODE_CONFIGS[node.executable]:
            try:
                declared |= {f.name for f in dataclasses.fields(
                    getattr(importlib.import_module(module), cls))}
            except (ImportError, AttributeError) as exc:
                pytest.fail(f'{node.executable}: cannot read its parameters ({exc})')
        given = set(node.parameters) | set(g.file_parameters(node))
        assert given <= declared, f'{name}/{node.name}: unknown {sorted(given - declared)}'


INSTALLED_PROBE = """
import json
from pick_place_rl.bringup import graph
from pick_place_rl.launcher import ros_args
# any installed file passes the weights check (the shipped actor may not be trained yet)
nodes = graph.plan('sim_robot', {'weights': 'urdf/fetch.urdf'})
print(json.dumps({'module': graph.__file__, 'share': str(graph.share_dir()),
                  'argv': [ros_args(n) for n in nodes]}))
"""


def test_colcon_install_finds_its_own_share(tmp_path: Path) -> None:
    """From a colcon install tree (no source checkout), the graphs resolve their parameter
    files in ``install/.../share/pick_place_rl``, as ``ros2 launch`` does."""
    colcon = Path(sys.executable).parent / 'colcon'
    proc = subprocess.run(
        [str(colcon), '--log-base', str(tmp_path / 'log'), 'build', '--build-base',
         str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
         '--event-handlers', 'console_direct-'], cwd=ROOT / 'ros2_ws', capture_output=True,
        text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    prefix = tmp_path / 'install' / 'pick_place_rl'
    share = prefix / 'share' / 'pick_place_rl'
    assert sorted(p.name for p in (share / 'launch').glob('*.launch.py')) == \
        sorted(p.name for p in LAUNCH_FILES)
    site = next(prefix.glob('lib/python3*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix))
    env.pop('PICK_PLACE_RL_SHARE', None)
    probe = subprocess.run([sys.executable, '-c', INSTALLED_PROBE], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(found['module']).is_relative_to(site)
    assert Path(found['share']) == share
    files = [a for argv in found['argv'] for a in argv if a.endswith('.yaml')]
    assert files == [str(share / 'config' / 'fetch_sim.yaml'),
                     str(share / 'config' / 'fetch_policy.yaml')]


@pytest.mark.parametrize('profile, joints, trajectory_topic', [
    ('kuka_drivers', [f'joint_{i}' for i in range(1, 8)],
     '/joint_trajectory_controller/joint_trajectory'),
    ('lbr_fri', [f'lbr_A{i}' for i in range(1, 8)],
     '/lbr/joint_trajectory_controller/joint_trajectory'),
    ('fetch', ['shoulder_pan_joint', 'shoulder_lift_joint', 'upperarm_roll_joint',
               'elbow_flex_joint', 'forearm_roll_joint', 'wrist_flex_joint', 'wrist_roll_joint'],
     '/arm_controller/joint_trajectory'),
])
def test_real_profiles_match_their_driver_stacks(profile: str, joints: list[str],
                                                 trajectory_topic: str) -> None:
    """Joint names and controller topics of each stack; cautious limits until validated."""
    (node,) = g.plan('real_robot', {'profile': profile}, share=ROOT, check_files=False)
    values = {**g.file_parameters(node), **node.parameters}
    assert values['arm_joints'] == joints
    remaps = dict(node.remaps)
    assert remaps.get(values['trajectory_topic'], values['trajectory_topic']) == trajectory_topic
    assert values['velocity_scale'] <= 0.25, 'reduced speed until the cell is validated'
    assert values['max_input_age'] <= 0.1
    assert values['urdf'] == '', "the robot's own URDF is passed with urdf:="
    assert 'use_sim_time' in node.parameters and node.parameters['use_sim_time'] is False
    if profile != 'fetch':
        assert values['weights'] == '', 'no simulator-trained weights by default on a KUKA'
    with pytest.raises(g.GraphError, match=r'(no (weights|urdf) file given|does not exist)'):
        g.plan('real_robot', {'profile': profile}, share=ROOT)


def test_ros_launch_adapter_builds_nodes_only_from_the_plan() -> None:
    """``generate`` (needs ``launch``, absent here) makes each ``Node`` from ``node_kwargs`` of
    a planned node and declares every argument with description and choices: checked on its
    syntax tree, since it cannot run without a ROS distro."""
    import pick_place_rl.bringup.ros_launch as rl
    tree = ast.parse(Path(rl.__file__).read_text())
    (gen,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'generate']
    calls = {}
    for n in ast.walk(gen):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            calls.setdefault(n.func.id, []).append(n)
    (node_call,) = calls['Node']
    assert not node_call.args and [k.arg for k in node_call.keywords] == [None, 'on_exit']
    spread = node_call.keywords[0].value
    assert isinstance(spread, ast.Call) and spread.func.id == 'node_kwargs'
    (plan_call,) = calls['plan']
    assert ast.unparse(plan_call.args[0]) == 'graph_name'
    (declare,) = calls['DeclareLaunchArgument']
    assert {k.arg for k in declare.keywords} == {'default_value', 'description', 'choices'}
