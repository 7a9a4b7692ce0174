"""Test-session setup: an isolated ROS 2 domain so parallel test runs never cross.

Every process a test starts inherits ``os.environ``, so the domain id set here reaches the nodes
under test too. Discovery stays on this host.
"""
import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if 'ROS_DOMAIN_ID' not in os.environ or os.environ.get('PICK_PLACE_RL_TEST_DOMAIN') != '1':
        # 1..101, from the pid: two concurrent sessions on one machine very likely differ.
        os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 101)
        os.environ['PICK_PLACE_RL_TEST_DOMAIN'] = '1'
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('MUJOCO_GL', 'egl')
