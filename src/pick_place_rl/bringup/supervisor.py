"""Process supervision for bring-up without ``ros2 launch``: start, watch, respawn, stop.

Each child runs in its own session (process group), so a terminal Ctrl-C reaches only the
supervisor, which then stops the children in order: SIGINT to every group (rclpy shuts down
cleanly), SIGTERM after ``stop_timeout``, SIGKILL after as long again. Children also get
``PR_SET_PDEATHSIG`` (Linux): if the supervisor itself is killed with SIGKILL, the kernel sends
them SIGTERM, so a bring-up never leaves orphans behind.

Semantics follow ``ros2 launch``: a ``required`` process that exits ends the whole graph (its exit
code decides success); a ``respawn`` process is restarted after ``respawn_delay``; the others are
reported and the rest keeps running.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
import ctypes
from dataclasses import dataclass, field
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import IO

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    """A child process to supervise."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    respawn: bool = False
    respawn_delay: float = 2.0
    max_respawns: int = 5
    required: bool = True


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    respawns: int = 0
    restart_at: float | None = None
    exit_code: int | None = None


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f'killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'killed by signal {-code}'
    return f'exit code {code}'


def _die_with_parent(parent: int) -> Callable[[], None]:
    """``preexec_fn``: SIGTERM when the supervisor dies (closing the fork/prctl race)."""
    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: Ctrl-C/SIGTERM handling still applies
            return
        if os.getppid() != parent:
            os._exit(1)
    return preexec


class Supervisor:
    """Runs ``specs`` as child processes until a required one ends or a stop is requested.

    Output of each child is prefixed with ``[name]`` and echoed (``echo``) and/or written to
    ``log_dir/<name>.log``; the last lines are kept for the crash report either way.
    """

    def __init__(self, specs: Sequence[ProcessSpec], log_dir: Path | None = None,
                 echo: bool = True, stop_timeout: float = 10.0,
                 report: Callable[[str], None] | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f'process names must be unique: {names}')
        self.children = [_Child(s) for s in specs]
        self.log_dir = log_dir
        self.echo = echo
        self.stop_timeout = stop_timeout
        self.report = report or (lambda text: print(f'[launch] {text}', file=sys.stderr,
                                                    flush=True))
        self._stop = threading.Event()
        self._print_lock = threading.Lock()
        self.exit_code: int | None = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    # ---- starting ----------------------------------------------------------------------
    def start(self) -> None:
        """Start every child (from the calling thread: PDEATHSIG is tied to it)."""
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        env = dict(os.environ if spec.env is None else spec.env, PYTHONUNBUFFERED='1')
        log: IO[str] | None = None
        if self.log_dir is not None:
            log = open(self.log_dir / f'{spec.name}.log', 'a', encoding='utf-8')
        try:
            child.proc = subprocess.Popen(
                list(spec.argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env, start_new_session=True, text=True,
                errors='replace', bufsize=1, preexec_fn=_die_with_parent(os.getpid()))
        except OSError as exc:
            if log is not None:
                log.close()
            raise RuntimeError(f'cannot start {spec.name} ({spec.argv[0]}): {exc}') from exc
        child.exit_code = None
        child.restart_at = None
        self.report(f'started {spec.name} (pid {child.proc.pid})')
        child.reader = threading.Thread(target=self._pump, args=(child, child.proc, log),
                                        daemon=True, name=f'output-{spec.name}')
        child.reader.start()

    def _pump(self, child: _Child, proc: subprocess.Popen, log: IO[str] | None) -> None:
        prefix = f'[{child.spec.name}] '
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                line = line.rstrip('\n')
                child.tail.append(line)
                if log is not None:
                    log.write(line + '\n')
                    log.flush()
                if self.echo:
                    with self._print_lock:
                        print(prefix + line, flush=True)
        finally:
            if log is not None:
                log.close()

    # ---- running -----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask :meth:`run` to stop every child and return (safe from signal handlers)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def poll(self) -> None:
        """Reap exited children: report, respawn, or end the graph when a required one ends."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is None:
                if child.restart_at is not None and now >= child.restart_at \
                        and not self._stop.is_set():
                    child.respawns += 1
                    self._spawn(child)
                continue
            code = proc.poll()
            if code is None:
                continue
            if child.reader is not None:
                child.reader.join(timeout=2.0)
            child.proc, child.exit_code = None, code
            if self._stop.is_set():
                continue
            spec = child.spec
            if code != 0:
                self.report(f'{spec.name} crashed ({_describe(code)}); last output:\n'
                            + '\n'.join(f'    {line}' for line in list(child.tail)[-15:]))
            else:
                self.report(f'{spec.name} exited ({_describe(code)})')
            if spec.respawn and child.respawns < spec.max_respawns:
                child.restart_at = now + spec.respawn_delay
                self.report(f'respawning {spec.name} in {spec.respawn_delay:g} s '
                            f'({child.respawns + 1}/{spec.max_respawns})')
            elif spec.required:
                why = 'crashed' if code != 0 else 'exited'
                self.report(f'{spec.name} is required and {why}: stopping the graph')
                self.exit_code = 1 if code != 0 else 0
                self._stop.set()
            elif all(c.proc is None and c.restart_at is None for c in self.children):
                self.exit_code = 1 if any(c.exit_code for c in self.children) else 0
                self._stop.set()

    def run(self, until: Callable[[], bool] | None = None, poll_period: float = 0.1) -> int:
        """Start, supervise until done (or ``until()`` is true, or a stop), stop; exit code.

        SIGINT and SIGTERM request a stop while this runs in the main thread.
        """
        restore = self._install_signal_handlers()
        try:
            self.start()
            while not self._stop.is_set():
                self.poll()
                if until is not None and until():
                    break
                self._stop.wait(poll_period)
            self.poll()
        finally:
            self.stop()
            restore()
        return 0 if self.exit_code is None else self.exit_code

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            if not self._stop.is_set():
                self.report(f'{signal.Signals(signum).name}: stopping all nodes')
            self._stop.set()

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)
        return restore

    # ---- stopping ----------------------------------------------------------------------
    def alive(self) -> list[str]:
        return [c.spec.name for c in self.children if c.proc is not None and
                c.proc.poll() is None]

    def stop(self) -> None:
        """SIGINT every child's process group, then SIGTERM, then SIGKILL; wait for all."""
        self._stop.set()
        for c in self.children:
            c.restart_at = None
        steps = ((signal.SIGINT, self.stop_timeout), (signal.SIGTERM, self.stop_timeout),
                 (signal.SIGKILL, 5.0))
        for sig, timeout in steps:
            running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
            if not running:
                break
            if sig != signal.SIGINT:
                self.report(f'{", ".join(c.spec.name for c in running)} still running: '
                            f'{sig.name}')
            for c in running:
                try:
                    os.killpg(c.proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            for c in running:
                try:
                    c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for c in self.children:
            if c.proc is not None:
                # the group may hold grandchildren that outlived the leader
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                c.exit_code = c.proc.wait()
                if c.reader is not None:
                    c.reader.join(timeout=2.0)
                c.proc = None
