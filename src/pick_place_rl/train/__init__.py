"""Training loops, evaluation and benchmarks; no ROS here."""
