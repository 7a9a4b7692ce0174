"""Print the fully qualified names of the nodes on the current ROS domain, as JSON.

``python -m pick_place_rl.nodes.graph_probe --wait 5 --expect /sim_driver``: the launcher runs
this in a separate process before a bring-up (it keeps rclpy out of the launcher itself) to
refuse starting a second copy of a graph on the same domain.
"""
from __future__ import annotations

import argparse
import json
import time

import rclpy
from rclpy.node import Node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--wait', type=float, default=5.0,
                        help='seconds of discovery before listing')
    parser.add_argument('--expect', nargs='*', default=[],
                        help='fully qualified node names: list as soon as one of them shows up')
    args = parser.parse_args(argv)
    rclpy.init(args=[])
    try:
        node = Node('pick_place_rl_graph_probe')

        def names() -> set[str]:
            return {(ns.rstrip('/') + '/' + name) for name, ns
                    in node.get_node_names_and_namespaces()} - {'/' + node.get_name()}
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and not names() & set(args.expect):
            rclpy.spin_once(node, timeout_sec=0.1)
        found = sorted(names())
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    print(json.dumps(found))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
