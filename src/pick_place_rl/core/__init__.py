"""Learning core: numpy and torch only (no simulator, no ROS)."""
