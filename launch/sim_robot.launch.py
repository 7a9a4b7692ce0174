"""Simulated robot and policy node.

``ros2 launch pick_place_rl sim_robot.launch.py robot:=fetch``.

Arguments (``ros2 launch ... --show-args``): robot (fetch|kuka), policy, weights, clock_mode,
use_sim_time, seed, respawn. Without a ROS distro: ``pick-place-rl launch sim_robot robot:=fetch``
starts the same nodes from the same description (pick_place_rl.bringup.graph).
"""
from launch import LaunchDescription

from pick_place_rl.bringup.ros_launch import generate


def generate_launch_description() -> LaunchDescription:
    return generate('sim_robot')
