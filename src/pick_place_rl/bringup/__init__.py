"""Bring-up: the node graphs (one description), the launch-file adapter and the supervisor.

Nothing here imports rclpy: ``ros2 launch`` reads the graphs through ``ros_launch``, the
``pick-place-rl launch`` command through ``pick_place_rl.launcher``.
"""
