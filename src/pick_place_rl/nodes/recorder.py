"""Record ROS 2 topics to an MCAP file that ``ros2 bag`` (rosbag2_storage_mcap), Foxglove and
``mcap-ros2-support`` read: the ``ros2`` profile, ``ros2msg`` schemas with their dependencies
inlined, ``cdr`` messages exactly as they crossed DDS (raw subscriptions, no re-serialisation).

Topics are subscribed as they appear on the graph, with the QoS their publishers offer
(reliable and transient-local only when every publisher is), as ``ros2 bag record`` does, so a
latched topic's history is captured and no incompatible-QoS match is refused.
"""
from __future__ import annotations

from collections.abc import Iterable
import importlib
import os
from pathlib import Path
import re
import sys
import time
from typing import Any, BinaryIO

from mcap.writer import CompressionType, Writer
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
              'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring', 'time', 'duration'}
SEPARATOR = '=' * 80


def _share_dirs(package: str) -> list[Path]:
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory(package)))
    except Exception:  # not in the ament index (PyPI wheels): look next to the interpreter
        pass
    dirs.append(Path(sys.prefix) / 'share' / package)
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / 'share' / package)
    return dirs


def msg_text(package: str, name: str) -> str:
    """The ``.msg`` source of ``package/msg/name`` as installed with the message package."""
    for share in _share_dirs(package):
        path = share / 'msg' / f'{name}.msg'
        if path.is_file():
            return path.read_text(encoding='utf-8')
    raise FileNotFoundError(f'{package}/msg/{name}.msg not found in any share folder')


def _field_types(text: str, package: str) -> list[tuple[str, str]]:
    """Non-primitive (package, name) types used by the fields of a ``.msg`` text."""
    out = []
    for line in text.splitlines():
        words = line.split('#', 1)[0].split()
        if len(words) < 2:
            continue
        # TYPE NAME [default] or TYPE NAME=VALUE; constants are primitive, skipped below
        base = re.sub(r'<=\d+$', '', re.sub(r'\[[^\]]*\]$', '', words[0]))
        if base in PRIMITIVES:
            continue
        if base == 'Header':
            out.append(('std_msgs', 'Header'))
        elif '/' in base:
            pkg, _, typ = base.partition('/')
            out.append((pkg, typ.split('/')[-1]))
        else:
            out.append((package, base))
    return out


def msg_definition(datatype: str) -> str:
    """Full ``ros2msg`` schema of ``pkg/msg/Type``: its text, then each dependency's, once."""
    package, _, name = datatype.split('/')
    root = msg_text(package, name)
    parts, seen = [root], {(package, name)}
    stack = list(reversed(_field_types(root, package)))
    while stack:
        pkg, typ = stack.pop()
        if (pkg, typ) in seen:
            continue
        seen.add((pkg, typ))
        text = msg_text(pkg, typ)
        parts.append(f'{SEPARATOR}\nMSG: {pkg}/{typ}\n{text}')
        stack.extend(reversed(_field_types(text, pkg)))
    return '\n'.join(parts)


def message_class(datatype: str) -> Any:
    package, kind, name = datatype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


class TopicRecorder:
    """Raw subscriptions of ``topics`` on ``node`` written to one MCAP file."""

    def __init__(self, node: Node, path: Path, topics: Iterable[str]) -> None:
        self.node = node
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.wanted = set(topics)
        self._file: BinaryIO = open(self.path, 'wb')
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='pick_place_rl')
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._subscriptions: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._closed = False

    def poll(self) -> None:
        """Subscribe to wanted topics that have appeared on the graph since the last call."""
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.wanted and topic not in self._subscriptions and types:
                self._subscribe(topic, types[0])

    def _subscribe(self, topic: str, datatype: str) -> None:
        qos = self._qos(topic)
        if qos is None:
            return
        if datatype not in self._schemas:
            self._schemas[datatype] = self._writer.register_schema(
                name=datatype, encoding='ros2msg',
                data=msg_definition(datatype).encode('utf-8'))
        channel = self._writer.register_channel(topic=topic, message_encoding='cdr',
                                                schema_id=self._schemas[datatype])
        self._channels[topic] = channel
        self.counts[topic] = 0

        def write(data: bytes, topic: str = topic, channel: int = channel) -> None:
            if self._closed:
                return
            now = time.time_ns()
            self._writer.add_message(channel, log_time=now, data=bytes(data), publish_time=now,
                                     sequence=self.counts[topic])
            self.counts[topic] += 1
        self._subscriptions[topic] = self.node.create_subscription(
            message_class(datatype), topic, write, qos, raw=True)

    def _qos(self, topic: str) -> QoSProfile | None:
        offered = [info.qos_profile for info in self.node.get_publishers_info_by_topic(topic)]
        if not offered:
            return None  # only subscribers so far: wait for a publisher to learn its QoS
        reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
        latched = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        return QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def close(self) -> None:
        """Stop recording and finish the file (its summary and index make it seekable)."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subscriptions.values():
            self.node.destroy_subscription(sub)
        self._writer.finish()
        self._file.close()
