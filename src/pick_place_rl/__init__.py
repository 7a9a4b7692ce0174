"""pick_place_rl: learn pick-and-place with DDPG+HER and DQN, run it on a ROS 2 robot."""

__version__ = '0.1.0'
