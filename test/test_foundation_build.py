"""The package builds in a ROS 2 workspace (colcon from PyPI) and passes ament-style lint."""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from test_foundation import console_scripts

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'pick_place_rl'
#: Paths that a build could leave in the source tree; colcon must not create any of them.
BUILD_LEFTOVERS = ('build', 'install', 'log', 'ros2_ws/build', 'ros2_ws/install', 'ros2_ws/log',
                   'src/*.egg-info', '*.egg-info')
CREATED: list[str] = []


def _leftovers() -> set[str]:
    return {str(p.relative_to(ROOT)) for pattern in BUILD_LEFTOVERS for p in ROOT.glob(pattern)}


def _tool(name: str) -> str:
    """An executable of the test's environment (colcon, ruff), found without activating it."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f'{name} is not installed: run scripts/setup.sh'
    return found


@pytest.fixture(scope='module')
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``colcon build`` of ros2_ws/ with build, install and log folders outside the tree."""
    out = tmp_path_factory.mktemp('colcon')
    before = _leftovers()
    proc = subprocess.run(
        [_tool('colcon'), '--log-base', str(out / 'log'), 'build', '--build-base',
         str(out / 'build'), '--install-base', str(out / 'install'),
         '--event-handlers', 'console_direct-'],
        cwd=ROOT / 'ros2_ws', capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '1 package finished' in proc.stdout, proc.stdout
    CREATED.extend(sorted(_leftovers() - before))
    return out / 'install' / PACKAGE


def test_colcon_installs_share_files(colcon_install: Path) -> None:
    share = colcon_install / 'share' / PACKAGE
    assert (share / 'package.xml').read_bytes() == (ROOT / 'package.xml').read_bytes()
    index = colcon_install / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    assert index.exists(), 'ament index marker missing: ros2 run/launch would not find it'
    expected = {'launch': '*.py', 'config': '*.yaml', 'urdf': '*.urdf', 'models': '**/*'}
    for folder, pattern in expected.items():
        assert (share / folder).is_dir(), f'share/{PACKAGE}/{folder} not installed'
        for source in (ROOT / folder).glob(pattern):
            if source.is_file():
                installed = share / source.relative_to(ROOT)
                assert installed.is_file(), f'{source.relative_to(ROOT)} not installed'
    # the shipped weights live in models/<name>/ folders: the demo's default must install
    assert (share / 'models' / 'fetch_pick_and_place' / 'actor.pt').is_file()


def test_colcon_installs_console_scripts(colcon_install: Path) -> None:
    lib = colcon_install / 'lib' / PACKAGE
    for name in console_scripts():
        script = lib / name
        assert script.is_file() and os.access(script, os.X_OK), f'lib/{PACKAGE}/{name} missing'


def test_installed_package_runs_from_the_install_tree(colcon_install: Path) -> None:
    """The installed executable imports pick_place_rl from install/, not from the source tree."""
    site = next(colcon_install.glob('lib/python3*/site-packages'))
    env = dict(os.environ, PYTHONPATH=str(site))
    probe = 'import pick_place_rl.cli as c; print(c.__file__)'
    proc = subprocess.run([sys.executable, '-c', probe], env=env, capture_output=True,
                          text=True, timeout=60, cwd=colcon_install)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(site)
    proc = subprocess.run([str(colcon_install / 'lib' / PACKAGE / 'pick-place-rl'), '--help'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'train' in proc.stdout


def test_colcon_leaves_the_tree_clean(colcon_install: Path) -> None:
    assert CREATED == [], f'colcon build left {CREATED} in the source tree'


def test_ruff_lint_passes() -> None:
    """ament style: 99 columns, single quotes, google import order (ruff.toml)."""
    proc = subprocess.run([_tool('ruff'), 'check', '--no-cache', '--output-format', 'concise',
                           '.'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f'ruff check . found problems:\n{proc.stdout[-5000:]}'
