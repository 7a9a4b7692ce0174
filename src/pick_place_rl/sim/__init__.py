"""Gymnasium environments and simulator backends (MuJoCo, PyBullet); no ROS here."""
