"""Base of the in-process clients (tests, benchmarks, demo) that talk to nodes on the graph.

Spinning until a condition holds and calling a service synchronously, written once: both need a
node that is spun by the caller's thread, never by a background executor, so that recorded
messages and service answers arrive in a deterministic order.
"""
from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any

import rclpy
from rclpy.node import Node


class GraphClient:
    """Holds ``self.node``; subclasses add their publishers, recorders and helpers."""

    node: Node
    spin_period = 0.01

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Spin the node until ``predicate()`` holds or ``timeout`` seconds pass."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            rclpy.spin_once(self.node, timeout_sec=self.spin_period)
        return predicate()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call_service(self, srv_type: Any, name: str, request: Any = None,
                     timeout: float = 30.0) -> Any:
        """Call a service and wait for its answer; TimeoutError names the service."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f'service {name} not available')
            future = client.call_async(request if request is not None else srv_type.Request())
            self.spin_until(future.done, timeout)
            if not future.done():
                raise TimeoutError(f'service {name} did not answer')
            return future.result()
        finally:
            self.node.destroy_client(client)
