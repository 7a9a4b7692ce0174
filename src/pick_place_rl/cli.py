"""``pick-place-rl``: one command line for training, bring-up, goals and the demo.

Subcommands are looked up lazily so that ``--help`` is fast and a missing optional dependency
only affects the subcommand that needs it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SETUP_HINT = 'run scripts/setup.sh (it creates .venv with every dependency), then retry'

#: subcommand -> (module, help). Each module defines ``add_arguments(parser)`` and ``run(args)``.
COMMANDS: dict[str, tuple[str, str]] = {
    'train': ('pick_place_rl.train.cli', 'train a policy (ddpg-her, dqn-grasp, ...)'),
    'launch': ('pick_place_rl.launcher', 'bring up nodes without a ROS distro'),
    'goal': ('pick_place_rl.nodes.goal_tool', 'send a pick-place goal and wait for the result'),
    'demo': ('pick_place_rl.demo', 'the README demo: sim robot + policy + goals'),
}


def missing_dependency(exc: ImportError, prog: str = 'pick-place-rl') -> str:
    """The one-line message for an import that failed because the environment is incomplete.

    Re-raises when the missing module is this package's own (a bug, which needs its traceback).
    """
    name = exc.name or ''
    if name.split('.')[0] == 'pick_place_rl':
        raise exc
    what = f'missing dependency {name!r}' if isinstance(exc, ModuleNotFoundError) and name \
        else f'a dependency fails to import ({exc})'
    return f'{prog}: {what}: {SETUP_HINT}'


def _load(module: str):
    return importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    """Entry point; a missing dependency anywhere below prints what to run, not a traceback."""
    try:
        return _main(argv)
    except ImportError as exc:
        print(missing_dependency(exc), file=sys.stderr)
        return 3


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog='pick-place-rl', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (_, helptext) in COMMANDS.items():
        sub.add_parser(name, help=helptext, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.print_help() if not argv or argv[0] in ('-h', '--help') else parser.parse_args(argv)
        return 0 if not argv or argv[0] in ('-h', '--help') else 2
    module = _load(COMMANDS[argv[0]][0])
    sub_parser = argparse.ArgumentParser(prog=f'pick-place-rl {argv[0]}',
                                         description=COMMANDS[argv[0]][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
