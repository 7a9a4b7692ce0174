"""Robot descriptions, kinematics (Pinocchio), joint maps, limits and safety; no ROS here."""
