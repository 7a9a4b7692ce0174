"""Ship a DQN run into ``models/``: weights, curves, metrics and a model card.

``python -m pick_place_rl.train.dqn_card RUN_DIR BENCH_JSON DEST --command '...'``

Copies the best-evaluated Q-net of the run (``qnet_best.pt``, falling back to ``qnet.pt``) as
``DEST/qnet.pt``, the curves and ``metrics.json``, and writes ``DEST/README.md`` from the
training metrics and the held-out benchmark JSON written by ``bench/bench_grasp.py`` on the
shipped file -- the card's success numbers are measured, not copied from the training log.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil

from pick_place_rl.core.checkpoint import atomic_write_json


def _rate(entry: dict | None) -> str:
    if not entry:
        return 'not measured'
    lo, hi = entry['ci95']
    return (f"**{entry['success_rate']:.3f}** (95% CI {lo:.2f}-{hi:.2f}, "
            f"{entry['attempts']} attempts, {entry['episodes']} episodes)")


def _training_time(metrics: dict, cfg: dict) -> str:
    cpu = f"{metrics.get('cpu_s', 0) / 60:.1f} CPU-minutes of the trainer process"
    wall = f"{metrics['wall_s'] / 60:.1f} wall minutes"
    if cfg.get('async_env'):
        # The env worker's physics runs in another process: the CPU figure leaves it out.
        return f'{wall} on both cores of a 2-core machine (env in a worker process; {cpu})'
    return f'{cpu}, {wall} on a shared 2-core machine'


def write_card(run: Path, bench: dict, dest: Path, command: str,
               weights_name: str = 'qnet_best.pt') -> None:
    metrics = json.loads((run / 'metrics.json').read_text())
    dest.mkdir(parents=True, exist_ok=True)
    weights = run / weights_name if (run / weights_name).exists() else run / 'qnet.pt'
    shutil.copyfile(weights, dest / 'qnet.pt')
    for name in ('curve.png', 'curve_cpu.png'):
        if (run / name).exists():
            shutil.copyfile(run / name, dest / name)
    best = metrics.get('best', {})
    summary = {k: metrics[k] for k in ('env_id', 'kind', 'seed', 'epochs', 'env_steps',
                                       'episodes', 'wall_s', 'cpu_s', 'time_to',
                                       'cpu_time_to', 'config', 'history') if k in metrics}
    summary['shipped_epoch'] = best.get('epoch') if weights.name == 'qnet_best.pt' else \
        metrics['epochs']
    summary['benchmark'] = bench
    atomic_write_json(dest / 'metrics.json', summary)
    cfg = metrics['config']
    per = 'grasp attempt' if metrics['kind'] == 'dqn_grasp_qmap' else 'episode'
    lat = bench.get('latency', {})
    rows = [
        ('task', f"`{metrics['env_id']}`, objects from the "
                 f"`{cfg.get('train_split')}` split, evaluated on `{bench['split']}`"),
        ('network', f"`{metrics['kind']}` (checkpoint kind; load with "
                    '`pick_place_rl.core.grasp_policy.GraspPolicy(path, kind)`)'),
        ('training command', f'`{command}`'),
        ('seed', str(metrics['seed'])),
        ('training time', _training_time(metrics, cfg)),
        ('experience', f"{metrics['env_steps']:,} env steps, {metrics['episodes']:,} episodes, "
                       f"{metrics['epochs']} epochs (shipped: epoch {summary['shipped_epoch']})"),
        (f'success per {per}, greedy net, held-out objects', _rate(bench.get('net'))),
        ('random policy, same episodes', _rate(bench.get('random'))),
    ]
    if 'random on objects' in bench:
        rows.append(('random grasp on object pixels, same episodes',
                     _rate(bench['random on objects'])))
    if lat:
        rows.append(('inference latency (1 image, 1 thread)',
                     f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms ({lat['n']} calls)"))
    loaded = bench.get('latency_under_load')
    if loaded:
        rows.append(('the same, while 2 other benchmarks shared its core',
                     f"p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']} ms"))
    lines = [f"# {metrics['env_id']} grasp Q-net (DQN)", '', '| | |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in rows]
    lines += ['', 'Benchmark command (on the shipped file):', '',
              f"`python bench/bench_grasp.py --task {bench['task']} --weights "
              f"{dest.as_posix()}/qnet.pt --episodes {bench['net']['episodes']}`", '',
              'Files: `qnet.pt` (Q-net weights and shapes), `metrics.json` (training history, '
              'config and the benchmark output), `curve.png` (greedy success on held-out '
              'objects vs wall clock)' + (', `curve_cpu.png` (the same vs CPU time of the '
                                          'trainer).' if (dest / 'curve_cpu.png').exists()
                                          else '.'),
              '', '![training curve](curve.png)', '']
    (dest / 'README.md').write_text('\n'.join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run', type=Path)
    ap.add_argument('bench', type=Path, help='JSON written by bench/bench_grasp.py --out')
    ap.add_argument('dest', type=Path)
    ap.add_argument('--command', required=True, help='the training command, for the card')
    ap.add_argument('--weights', default='qnet_best.pt',
                    help='file of the run to ship: qnet_best.pt (best evaluation) or qnet.pt')
    args = ap.parse_args()
    write_card(args.run, json.loads(args.bench.read_text()), args.dest, args.command,
               args.weights)


if __name__ == '__main__':
    main()
