"""The bring-up supervisor with real child processes: crash reports, respawn, clean stops, and
no orphans, even when the supervisor itself is killed."""
from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pick_place_rl.bringup.supervisor import ProcessSpec, Supervisor

# A child that records its pid, prints, and exits 0 on SIGINT (like an rclpy node).
STEADY = textwrap.dedent("""
    import os, signal, sys, time
    open(sys.argv[1], 'a').write(f'{os.getpid()}\\n')
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    print('steady up', flush=True)
    while True:
        time.sleep(0.05)
""")
# A child that ignores SIGINT and SIGTERM: only SIGKILL ends it.
STUBBORN = textwrap.dedent("""
    import os, signal, sys, time
    open(sys.argv[1], 'a').write(f'{os.getpid()}\\n')
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print('stubborn up', flush=True)
    while True:
        time.sleep(0.05)
""")
CRASHER = textwrap.dedent("""
    import os, sys, time
    open(sys.argv[1], 'a').write(f'{os.getpid()}\\n')
    time.sleep(float(sys.argv[2]))
    print('boom: something broke', flush=True)
    sys.exit(3)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        state = Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != 'Z'


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _reap(path: Path) -> None:
    """Kill what a failed test left behind (only the pids it recorded)."""
    for pid in _pids(path):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def spec(name: str, script: str, *args: str, **kwargs) -> ProcessSpec:
    return ProcessSpec(name, [sys.executable, '-c', script, *args], **kwargs)


def test_crash_is_reported_and_the_rest_keeps_running(tmp_path: Path) -> None:
    reports: list[str] = []
    pids = tmp_path / 'pids'
    sup = Supervisor([spec('steady', STEADY, str(pids)),
                      spec('crasher', CRASHER, str(pids), '0.3', required=False)],
                     log_dir=tmp_path / 'logs', echo=False, report=reports.append)
    sup.start()
    try:
        assert _wait(lambda: (sup.poll(), any('crashed' in r for r in reports))[1], 20), reports
        assert sup.alive() == ['steady'], 'a non-required crash must not stop the others'
    finally:
        sup.stop()
    crash = next(r for r in reports if 'crashed' in r)
    assert 'crasher crashed (exit code 3)' in crash
    assert 'boom: something broke' in crash, 'the report carries the last output'
    assert 'boom: something broke' in (tmp_path / 'logs' / 'crasher.log').read_text()
    assert not any(_alive(p) for p in _pids(pids))


def test_required_crash_stops_the_graph_with_failure(tmp_path: Path) -> None:
    pids = tmp_path / 'pids'
    reports: list[str] = []
    sup = Supervisor([spec('steady', STEADY, str(pids)),
                      spec('crasher', CRASHER, str(pids), '0.3')], echo=False,
                     report=reports.append)
    t0 = time.monotonic()
    assert sup.run(poll_period=0.05) == 1
    assert time.monotonic() - t0 < 15
    assert any('required and crashed' in r for r in reports), reports
    assert len(_pids(pids)) == 2 and not any(_alive(p) for p in _pids(pids))


def test_respawn_restarts_until_the_limit(tmp_path: Path) -> None:
    pids = tmp_path / 'pids'
    reports: list[str] = []
    sup = Supervisor([spec('steady', STEADY, str(pids), required=False),
                      spec('flaky', CRASHER, str(pids), '0.1', respawn=True, respawn_delay=0.2,
                           max_respawns=2)], echo=False, report=reports.append)
    assert sup.run(poll_period=0.05) == 1
    started = [r for r in reports if r.startswith('started flaky')]
    assert len(started) == 3, reports       # first start + 2 respawns
    assert sum('respawning flaky' in r for r in reports) == 2
    assert len(set(_pids(pids))) == 4 and not any(_alive(p) for p in _pids(pids))


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    pids = tmp_path / 'pids'
    reports: list[str] = []
    sup = Supervisor([spec('stubborn', STUBBORN, str(pids))], echo=False, stop_timeout=0.5,
                     report=reports.append)
    sup.start()
    assert _wait(lambda: len(_pids(pids)) == 1, 10)
    sup.stop()
    assert not _alive(_pids(pids)[0])
    assert any('SIGTERM' in r for r in reports) and any('SIGKILL' in r for r in reports)


# The supervisor in its own process, as `pick-place-rl launch` runs it.
HOST = textwrap.dedent("""
    import sys
    from pick_place_rl.bringup.supervisor import ProcessSpec, Supervisor
    steady, pids = sys.argv[1], sys.argv[2]
    specs = [ProcessSpec(f'n{i}', [sys.executable, '-c', steady, pids]) for i in range(3)]
    sys.exit(Supervisor(specs, stop_timeout=3.0).run())
""")


def _host(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / 'pids'
    proc = subprocess.Popen([sys.executable, '-c', HOST, STEADY, str(pids)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert _wait(lambda: len(_pids(pids)) == 3, 30), 'children did not start'
    return proc, pids


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_all_children_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc, pids = _host(tmp_path)
    try:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert f'{sig.name}: stopping all nodes' in out
        assert 'steady up' in out and '[n2] steady up' in out, 'output is prefixed per node'
        assert not any(_alive(p) for p in _pids(pids)), out
    finally:
        _reap(pids)


def test_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    proc, pids = _host(tmp_path)
    try:
        proc.kill()
        proc.communicate(timeout=10)
        assert _wait(lambda: not any(_alive(p) for p in _pids(pids)), 10), \
            'children outlived a SIGKILLed supervisor'
    finally:
        _reap(pids)
