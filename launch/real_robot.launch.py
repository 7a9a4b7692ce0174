"""Policy node for a real robot.

``ros2 launch pick_place_rl real_robot.launch.py profile:=kuka_drivers``:

The robot's own driver stack (kuka_drivers, lbr_fri_ros2_stack, Fetch via ros1_bridge) runs
separately; the profile picks the parameter files and remaps (pick_place_rl.bringup.graph).
Without a ROS distro: ``pick-place-rl launch real_robot profile:=...``.
"""
from launch import LaunchDescription

from pick_place_rl.bringup.ros_launch import generate


def generate_launch_description() -> LaunchDescription:
    return generate('real_robot')
