"""ament_python / setuptools build of pick_place_rl.

The same file serves ``colcon build`` in a ROS 2 workspace (data files land under
``share/pick_place_rl``, console scripts under ``lib/pick_place_rl`` through setup.cfg) and
``pip install -e .`` in the PyPI-only virtual environment made by ``scripts/setup.sh``.
"""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'pick_place_rl'


def share(subdir: str, pattern: str = '*') -> tuple[str, list[str]]:
    """Map a source folder to its install folder under share/<package>."""
    files = [f for f in glob(os.path.join(subdir, pattern)) if os.path.isfile(f)]
    return os.path.join('share', PACKAGE, subdir), files


def share_tree(subdir: str) -> list[tuple[str, list[str]]]:
    """``share`` for a folder and every folder below it (models/<name>/...)."""
    return [share(folder) for folder, _, _ in sorted(os.walk(subdir))]


setup(
    name=PACKAGE,
    version='0.1.0',
    package_dir={'': 'src'},
    packages=find_packages('src'),
    package_data={PACKAGE: ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        share('launch', '*.py'),
        share('config', '*.yaml'),
        share('urdf', '*.urdf'),
        *share_tree('models'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='pick_place_rl maintainers',
    maintainer_email='maintainers@pick-place-rl.dev',
    description='Pick-and-place with DDPG+HER and DQN for ROS 2',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'pick-place-rl = pick_place_rl.cli:main',
            'sim_driver = pick_place_rl.nodes.sim_driver:main',
            'policy_node = pick_place_rl.nodes.policy_node:main',
            'grasp_node = pick_place_rl.nodes.grasp_node:main',
            'trainer_node = pick_place_rl.nodes.trainer_node:main',
            'goal_tool = pick_place_rl.nodes.goal_tool:main',
        ],
    },
)
