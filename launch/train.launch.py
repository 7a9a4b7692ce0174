"""DDPG+HER trainer node.

``ros2 launch pick_place_rl train.launch.py preset:=fast minutes:=60``.

Progress on /pick_place/train_progress; weights land in out_dir. Without a ROS distro:
``pick-place-rl launch train ...`` (same description: pick_place_rl.bringup.graph).
"""
from launch import LaunchDescription

from pick_place_rl.bringup.ros_launch import generate


def generate_launch_description() -> LaunchDescription:
    return generate('train')
