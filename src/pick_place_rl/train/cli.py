"""``pick-place-rl train ALGO``: the trainer CLI (flags generated from the config dataclasses)."""
from __future__ import annotations

import argparse
import json
import signal
import sys

from pick_place_rl.core.checkpoint import CheckpointError
from pick_place_rl.core.config import add_dataclass_args, from_namespace
from pick_place_rl.sim.registry import UnknownEnvError

#: algorithm -> (module, config class name, trainer class name)
ALGORITHMS = {
    'ddpg-her': ('pick_place_rl.train.ddpg_her', 'DDPGHerConfig', 'DDPGHerTrainer'),
    'dqn-grasp': ('pick_place_rl.train.dqn', 'DQNConfig', 'DQNTrainer'),
    'dqn-pixel': ('pick_place_rl.train.dqn', 'DQNPixelConfig', 'DQNTrainer'),
    'dqn-reacher': ('pick_place_rl.train.dqn', 'DQNReacherConfig', 'DQNTrainer'),
}


def resolve_algorithm(algo: str):  # noqa: ANN201 - (module, config class, trainer class)
    """The module, config dataclass and trainer class of ``algo`` (imported on demand)."""
    import importlib
    module_name, config_name, trainer_name = ALGORITHMS[algo]
    module = importlib.import_module(module_name)
    return module, getattr(module, config_name), getattr(module, trainer_name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('algo', choices=sorted(ALGORITHMS), help='algorithm to train')
    # Parse the algorithm first so the flags of its config can be generated.
    algo = next((a for a in sys.argv[2:] if a in ALGORITHMS), None)
    if algo is None:
        return
    module, config_cls, _ = resolve_algorithm(algo)
    presets = getattr(module, 'PRESETS', {})
    if presets:
        parser.add_argument('--preset', choices=sorted(presets), default=None,
                            help='named starting configuration; explicit flags override it')
    parser.add_argument('--env', dest='env_id', default=None, help='alias of --env-id')
    add_dataclass_args(parser, config_cls)


def run(args: argparse.Namespace) -> int:
    module, config_cls, trainer_cls = resolve_algorithm(args.algo)
    base = config_cls()
    if getattr(args, 'preset', None):
        base = module.apply_preset(base, args.preset)
    try:
        config = from_namespace(config_cls, args, base)
        trainer = trainer_cls(config)
        stop = getattr(trainer, 'stop', None)
        if stop is not None:
            # Ctrl-C / SIGTERM: stop at the next cycle boundary, then write the actor, the final
            # evaluation, metrics and curve like a finished run (the epoch in progress is lost).
            def request_stop(signum: int, frame: object) -> None:
                print('pick-place-rl train: stopping after this cycle', file=sys.stderr)
                stop.set()
            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)
        metrics = trainer.train()
    except (UnknownEnvError, CheckpointError, ValueError) as exc:
        print(f'pick-place-rl train: error: {exc}', file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ('env_id', 'epochs', 'env_steps', 'wall_s', 'time_to')}
    summary['final'] = {k: metrics['final'].get(k) for k in ('success_rate', 'return')}
    print(json.dumps(summary))
    outputs = getattr(module, 'OUTPUTS', 'checkpoint.pt actor.pt metrics.json curve.png tb/')
    print(f'outputs in {config.out_dir}: {outputs}')
    return 0
