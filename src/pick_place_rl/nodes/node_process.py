"""Start a node as its own process and stop it again, keeping its output for the caller.

Shared by the sim-driver and policy-node clients (tests, benchmarks): the node runs exactly as
``ros2 run`` would start it, its log goes to a temporary file so a full pipe can never block it,
and :func:`stop_node` returns that log for assertions and failure reports.
"""
from __future__ import annotations

from collections.abc import Sequence
import os
import signal
import subprocess
import sys
import tempfile


def start_node(module: str, ros_args: Sequence[str], env: dict[str, str] | None = None,
               prefix: Sequence[str] = ()) -> subprocess.Popen:
    """``[prefix] python -m module --ros-args ros_args`` with unbuffered output to a log file."""
    args = [*prefix, sys.executable, '-m', module, '--ros-args', *ros_args]
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    log = tempfile.TemporaryFile('w+')  # read back by stop_node
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                            stdin=subprocess.DEVNULL)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop_node(proc: subprocess.Popen) -> str:
    """Stop a node process (SIGINT, then kill after 10 s) and return its log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.seek(0)  # type: ignore[attr-defined]
    text = proc.log.read()  # type: ignore[attr-defined]
    proc.log.close()  # type: ignore[attr-defined]
    return text
