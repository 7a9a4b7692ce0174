"""Package foundation: layering, console scripts, setup guards, README <-> CI command."""
from __future__ import annotations

import ast
import importlib.metadata
import json
import os
from pathlib import Path
import re
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ('core', 'sim', 'robot', 'train')

# Runs in a fresh interpreter so that no other test's imports can hide or cause a leak.
LAYER_PROBE = """
import importlib, json, pkgutil, sys
imported = {}
for layer in sys.argv[1:]:
    pkg = importlib.import_module('pick_place_rl.' + layer)
    names = [pkg.__name__] + [m.name for m in pkgutil.walk_packages(pkg.__path__,
                                                                    pkg.__name__ + '.')]
    for name in names:
        importlib.import_module(name)
    imported[layer] = names
ros = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rcl_interfaces')
             or m.split('.')[0].endswith(('_msgs', '_srvs')))
print(json.dumps({'imported': imported, 'ros': ros}))
"""


def console_scripts() -> dict[str, str]:
    """``name -> 'module:function'`` as declared in setup.py (read from its source)."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    entries = ast.literal_eval(value)
                    return dict(re.split(r'\s*=\s*', e, maxsplit=1) for e in entries)
    raise AssertionError('setup.py declares no console_scripts')


def test_layers_do_not_import_rclpy() -> None:
    proc = subprocess.run([sys.executable, '-c', LAYER_PROBE, *LAYERS], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['ros'] == [], f'ROS modules imported by the non-ROS layers: {result["ros"]}'
    assert 'pick_place_rl.train.ddpg_her' in result['imported']['train']
    assert 'pick_place_rl.core.checkpoint' in result['imported']['core']


def test_layer_probe_detects_rclpy() -> None:
    """The probe above is able to fail: the nodes layer does import rclpy."""
    proc = subprocess.run([sys.executable, '-c', LAYER_PROBE, 'nodes'], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'rclpy' in json.loads(proc.stdout.strip().splitlines()[-1])['ros']


def test_every_console_script_resolves_to_main() -> None:
    scripts = console_scripts()
    assert {'pick-place-rl', 'trainer_node', 'sim_driver', 'policy_node', 'grasp_node',
            'goal_tool'} <= set(
        scripts)
    probe = ('import importlib, sys\n'
             'bad = []\n'
             'for target in sys.argv[1:]:\n'
             '    module, func = target.split(":")\n'
             '    try:\n'
             '        ok = callable(getattr(importlib.import_module(module), func, None))\n'
             '    except Exception as exc:\n'
             '        ok = exc\n'
             '    if ok is not True:\n'
             '        bad.append(f"{target}: {ok!r}")\n'
             'sys.exit("\\n".join(bad) or None)\n')
    proc = subprocess.run([sys.executable, '-c', probe, *scripts.values()], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f'console scripts without an importable main:\n{proc.stderr}'
    venv_bin = Path(sys.executable).parent
    for name in scripts:
        assert (venv_bin / name).exists(), f'{name} not installed in {venv_bin}: rerun setup'


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one() -> None:
    blocks = re.findall(r'```bash\n(.*?)```', (ROOT / 'README.md').read_text(), re.S)
    main_job, tests = (b.strip() for b in blocks[:2])
    assert main_job.startswith('scripts/setup.sh && ')
    assert tests.startswith('scripts/setup.sh && ')
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()
    assert ci[-1] == tests, 'CI must run exactly the README test command'
    assert os.access(ROOT / '.ci' / 'run', os.X_OK)


def test_wrapper_before_setup_says_what_to_run(tmp_path: Path) -> None:
    env = dict(os.environ, PICK_PLACE_RL_VENV=str(tmp_path / 'no-venv-here'))
    proc = subprocess.run([str(ROOT / 'bin' / 'pick-place-rl'), 'train', 'ddpg-her'], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert 'scripts/setup.sh' in proc.stderr and 'Traceback' not in proc.stderr


def test_wrapper_forwards_to_the_environment() -> None:
    proc = subprocess.run([str(ROOT / 'bin' / 'pick-place-rl'), '--help'], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'train' in proc.stdout


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real virtual environment with none of the dependencies installed."""
    venv = tmp_path_factory.mktemp('bare') / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True,
                   timeout=120)
    return venv / 'bin' / 'python'


@pytest.mark.parametrize('args, prog, missing', [
    (['-m', 'pick_place_rl.cli', 'train', 'ddpg-her'], 'pick-place-rl', '(numpy|torch)'),
    (['-m', 'pick_place_rl.nodes.trainer_node'], 'pick_place_rl.nodes', 'rclpy'),
])
def test_missing_dependency_says_what_to_run(bare_python: Path, args: list[str], prog: str,
                                             missing: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / 'src'))
    env.pop('VIRTUAL_ENV', None)
    proc = subprocess.run([str(bare_python), *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=ROOT)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr
    assert re.search(f"{prog}: missing dependency '{missing}'", proc.stderr), proc.stderr
    assert 'scripts/setup.sh' in proc.stderr


def _top_level_imports(folder: Path) -> set[str]:
    """Absolute imports anywhere in the files under ``folder``, lazy ones included."""
    names = set()
    for path in folder.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split('.')[0])
    return names


def test_ros_packages_used_are_declared() -> None:
    """Each ROS package the code imports is an exec_depend (rosdep, ROS workspace) and a
    requirement (``ros-*`` wheel, PyPI-only setup), so both install paths get it."""
    dists = importlib.metadata.packages_distributions()
    used = sorted(name for name in _top_level_imports(ROOT / 'src' / 'pick_place_rl')
                  if any(d.startswith('ros-') for d in dists.get(name, ())))
    assert 'rclpy' in used and 'std_srvs' in used
    exec_depends = set(re.findall(r'<exec_depend>\s*([\w-]+)\s*</exec_depend>',
                                  (ROOT / 'package.xml').read_text()))
    requirements = {re.split(r'[=<>~\[; ]', line.strip())[0].lower()
                    for line in (ROOT / 'requirements.txt').read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith(('#', '-'))}
    missing_xml = [name for name in used if name not in exec_depends]
    missing_req = [name for name in used if 'ros-' + name.replace('_', '-') not in requirements]
    assert not missing_xml, f'add <exec_depend> to package.xml for {missing_xml}'
    assert not missing_req, f'add ros-* wheels to requirements.txt for {missing_req}'
