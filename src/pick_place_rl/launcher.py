"""``pick-place-rl launch GRAPH [name:=value ...]``: bring-up without a ROS distro.

Starts the nodes of a graph from :mod:`pick_place_rl.bringup.graph` (the description the
``launch/*.launch.py`` files read too) as separate processes, each the way ``ros2 run`` would:
``<executable> --ros-args -r __node:=NAME --params-file FILE -p key:=value -r from:=to``, and
supervises them (:mod:`pick_place_rl.bringup.supervisor`): Ctrl-C stops all, a crashed node is
reported, ``respawn:=true`` restarts the policy node.

Before anything starts, bad input ends the command with a one-line message and exit code 2:
unknown graph, argument or choice, a missing parameter or weights file, an invalid
``ROS_DOMAIN_ID``, or (the clash check) nodes of the same names already on that domain.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import yaml

from pick_place_rl.bringup.graph import GraphError, GRAPHS, plan, PlannedNode, share_dir
from pick_place_rl.bringup.supervisor import ProcessSpec, Supervisor

PROG = 'pick-place-rl launch'
#: Fast DDS maps a domain to UDP ports 7400 + 250 * id + ...; above 232 they pass 65535.
MAX_DOMAIN_ID = 232


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``['robot:=fetch', ...]`` -> ``{'robot': 'fetch'}`` (the ``ros2 launch`` syntax)."""
    values = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise GraphError(f'expected name:=value, got {item!r}')
        values[name] = value
    return values


def yaml_value(value: Any) -> str:
    """A parameter value as ``-p name:=VALUE`` text that rcl parses back to the same value."""
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value and '\n' not in value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(yaml_value(v) for v in value) + ']'
    return json.dumps(value)


def ros_args(node: PlannedNode) -> list[str]:
    """The ``--ros-args`` part of a node's command line."""
    args = ['--ros-args', '-r', f'__node:={node.name}']
    if node.namespace:
        args += ['-r', f'__ns:=/{node.namespace.strip("/")}']
    for path in node.params_files:
        args += ['--params-file', path]
    for key, value in node.parameters.items():
        args += ['-p', f'{key}:={yaml_value(value)}']
    for src, dst in node.remaps:
        args += ['-r', f'{src}:={dst}']
    return args


def resolve_executable(name: str) -> list[str]:
    """Command that runs console script ``name`` of this package, as ``ros2 run`` would.

    The script next to this interpreter when installed there, else the entry point through
    this interpreter; an entry point whose module is missing is an error now, not a crash later.
    """
    found = [ep for ep in importlib.metadata.entry_points(group='console_scripts', name=name)
             if ep.value.split('.')[0] == 'pick_place_rl']
    if not found:
        raise GraphError(f'node executable {name!r} is not installed (run scripts/setup.sh)')
    module, _, func = found[0].value.partition(':')
    if importlib.util.find_spec(module) is None:
        raise GraphError(f'node executable {name!r}: module {module} is missing from this '
                         'installation')
    script = Path(sys.executable).parent / name
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, '-c',
            f'import sys; from {module} import {func}; sys.exit({func}())']


def check_domain(env: Mapping[str, str]) -> int:
    """The ROS domain id of ``env``, validated (an invalid one makes every node die obscurely)."""
    text = env.get('ROS_DOMAIN_ID', '0').strip() or '0'
    try:
        domain = int(text)
    except ValueError:
        raise GraphError(f'ROS_DOMAIN_ID={text!r} is not an integer') from None
    if not 0 <= domain <= MAX_DOMAIN_ID:
        raise GraphError(f'ROS_DOMAIN_ID={domain} is outside 0..{MAX_DOMAIN_ID} (its DDS ports '
                         'would not fit); pick another with --domain-id')
    return domain


def existing_nodes(env: Mapping[str, str], wait: float = 5.0, timeout: float = 60.0,
                   expect: Sequence[str] = ()) -> list[str]:
    """Fully qualified names of the nodes already on the domain of ``env`` (a probe process).

    Discovery of an existing participant took 0.15 to 1.8 s on loopback here, and over 3 s on
    a heavily loaded machine, hence ``wait``; the probe returns early once one of ``expect``
    shows up, so a clash is reported at once.
    """
    proc = subprocess.run(
        [sys.executable, '-m', 'pick_place_rl.nodes.graph_probe', '--wait', str(wait),
         '--expect', *expect],
        capture_output=True, text=True, env=dict(env), timeout=timeout,
        stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise GraphError('cannot join the ROS graph on ROS_DOMAIN_ID='
                         f'{env.get("ROS_DOMAIN_ID", "0")}: '
                         + (proc.stderr.strip().splitlines() or ['no output'])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_clash(nodes: Sequence[PlannedNode], env: Mapping[str, str]) -> None:
    """Refuse to start nodes whose names already run on this domain (a second bring-up)."""
    running = set(existing_nodes(env, expect=[n.fqn for n in nodes]))
    clash = [n.fqn for n in nodes if n.fqn in running]
    if clash:
        raise GraphError(f'{", ".join(clash)} already running on ROS_DOMAIN_ID='
                         f'{env.get("ROS_DOMAIN_ID", "0")} (another bring-up?): stop it, or '
                         'use another domain with --domain-id')


def process_specs(nodes: Sequence[PlannedNode], env: Mapping[str, str] | None = None
                  ) -> list[ProcessSpec]:
    return [ProcessSpec(n.name, [*resolve_executable(n.executable), *ros_args(n)],
                        env=None if env is None else dict(env), respawn=n.respawn,
                        respawn_delay=n.respawn_delay, required=n.required) for n in nodes]


def prepare(graph: str, assignments: Mapping[str, str], domain_id: int | None = None,
            clash_check: bool = True, share: Path | None = None
            ) -> tuple[list[PlannedNode], list[ProcessSpec]]:
    """Every check that can fail before a process starts; the plan and the process specs."""
    env = dict(os.environ)
    # The simulators render offscreen (camera topics): EGL works without a display.
    env.setdefault('MUJOCO_GL', 'egl')
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    check_domain(env)
    nodes = plan(graph, assignments, share)
    specs = process_specs(nodes, env)
    if clash_check:
        check_clash(nodes, env)
    return nodes, specs


def describe(graph_names: Iterable[str]) -> str:
    """The graphs with their arguments (descriptions, choices, defaults), for ``--show-args``."""
    lines = []
    for name in graph_names:
        graph = GRAPHS[name]
        lines.append(f'{name}: {graph.description}')
        for a in graph.arguments:
            choices = f" (choices: {', '.join(repr(c) for c in a.choices)})" if a.choices else ''
            lines.append(f'    {a.name}:={a.default!r}  {a.description}{choices}')
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('graph', nargs='?', help='graph to bring up: ' + ', '.join(GRAPHS))
    parser.add_argument('assignments', nargs='*', metavar='name:=value',
                        help='launch arguments, as with ros2 launch')
    parser.add_argument('--show-args', action='store_true',
                        help='list the graphs (or GRAPH) and their arguments, then exit')
    parser.add_argument('--print', dest='print_only', action='store_true',
                        help='print the node command lines and exit without starting them')
    parser.add_argument('--domain-id', type=int, default=None,
                        help="ROS_DOMAIN_ID for the nodes (default: the environment's)")
    parser.add_argument('--no-clash-check', action='store_true',
                        help='skip looking for nodes of the same names on the domain')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help="also write each node's output to LOG_DIR/<node>.log")
    parser.add_argument('--quiet', action='store_true',
                        help='do not echo node output (crash reports still show its tail)')
    parser.add_argument('--stop-timeout', type=float, default=10.0,
                        help='seconds each node gets to stop after SIGINT before SIGTERM')


def run(args: argparse.Namespace) -> int:
    if args.show_args or args.graph is None:
        if args.graph is not None and args.graph not in GRAPHS:
            return _fail(GraphError(f'unknown graph {args.graph!r}; choose from '
                                    f'{", ".join(GRAPHS)}'))
        print(describe([args.graph] if args.graph else GRAPHS))
        return 0 if args.graph or args.show_args else 2
    try:
        assignments = parse_assignments(args.assignments)
        nodes, specs = prepare(args.graph, assignments, args.domain_id,
                               clash_check=not args.no_clash_check and not args.print_only)
    except GraphError as exc:
        return _fail(exc)
    if args.print_only:
        for spec in specs:
            print(f'# {spec.name}\n' + ' '.join(_quote(a) for a in spec.argv))
        return 0
    print(f'[launch] {args.graph}: {", ".join(n.name for n in nodes)} (share: {share_dir()})',
          file=sys.stderr, flush=True)
    supervisor = Supervisor(specs, log_dir=args.log_dir, echo=not args.quiet,
                            stop_timeout=args.stop_timeout)
    return supervisor.run()


def _quote(text: str) -> str:
    import shlex
    return shlex.quote(text)


def _fail(exc: Exception) -> int:
    print(f'{PROG}: error: {exc}', file=sys.stderr)
    return 2
