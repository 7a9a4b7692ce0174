"""ROS parameters generated from a node's config dataclass, and the common ``main()``.

``declare_config(node, ConfigCls)`` declares one parameter per dataclass field (with the field's
docstring as the descriptor's description) and returns the config built from the parameter
values, so a node has no parameter that its code does not read.
"""
from __future__ import annotations

from collections.abc import Callable
import dataclasses
from pathlib import Path
import sys
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from pick_place_rl.core.config import field_help, field_types

T = TypeVar('T')


def _ros_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


_EMPTY_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                      int: Parameter.Type.INTEGER_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


def declare_config(node: Node, cls: type[T], prefix: str = '') -> T:
    """Declare a parameter per field of ``cls`` and build the config from their values."""
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        descriptor = ParameterDescriptor(description=field_help(f), read_only=False)
        name = prefix + f.name
        initial = _ros_value(default)
        if isinstance(default, tuple) and not default:
            # An empty list says nothing about its items: declare the array type explicitly,
            # else rclpy picks BYTE_ARRAY and a YAML/CLI string list is refused.
            initial = _EMPTY_ARRAY_TYPES[typing.get_args(types[f.name])[0]]
        node.declare_parameter(name, initial, descriptor)
    return read_config(node, cls, prefix)


def read_config(node: Node, cls: type[T], prefix: str = '') -> T:
    """Build ``cls`` from the current values of parameters declared by :func:`declare_config`.

    Lists become tuples and integer values of float fields become floats (a YAML ``1`` for a
    ``float`` field), so the dataclass sees the types it declares.
    """
    types = field_types(cls)
    values = {}
    for f in dataclasses.fields(cls):
        try:
            value = node.get_parameter(prefix + f.name).value
        except ParameterUninitializedException:  # an empty list declared with its type only
            value = None
        if typing.get_origin(types[f.name]) is tuple:
            value = tuple(value or ())
        elif types[f.name] is float and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return cls(**values)


def spin_node(factory: Callable[[], Node], args: list[str] | None = None,
              executor_cls: type | None = None) -> int:
    """``main()`` body shared by all nodes: init, spin, clean shutdown on Ctrl-C / SIGTERM.

    A parameter of the wrong type or value (``-p rate:=fast``) ends the node with a one-line
    message and exit code 2 instead of a traceback.
    """
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    try:
        try:
            node = factory()
        except (ParameterException, ValueError) as exc:
            print(f'{Path(sys.argv[0]).stem}: invalid parameters: {exc}', file=sys.stderr)
            return 2
        if executor_cls is None:
            rclpy.spin(node)
        else:
            executor = executor_cls()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except RCLError:
        # SIGINT shuts the context down while an executor thread is inside rcl_wait: that wait
        # then fails (rcl wait.c); after a shutdown it is the normal end, not an error.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
