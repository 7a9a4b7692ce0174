"""ROS 2 adapters: the only package that imports rclpy and message types."""

try:  # fail here, once, with what to run, instead of a traceback from deep inside a node
    import rclpy  # noqa: F401
except ImportError as _exc:
    from pick_place_rl.cli import missing_dependency

    raise SystemExit(missing_dependency(_exc, 'pick_place_rl.nodes')) from None
