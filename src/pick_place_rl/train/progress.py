"""Progress bar, TensorBoard scalars and a CSV log for trainers."""
from __future__ import annotations

import csv
from pathlib import Path

from tqdm import tqdm


class TrainLogger:
    """One call per epoch: advances the wall-clock bar, writes ``train/*`` scalars and a CSV."""

    def __init__(self, out: Path, budget_s: float, tensorboard: bool = True,
                 progress: bool = True, initial_s: float = 0.0) -> None:
        self.out = Path(out)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out / 'tb'))
        self.bar = tqdm(total=round(budget_s), initial=round(min(initial_s, budget_s)),
                        unit='s', disable=not progress, dynamic_ncols=True)
        self.csv_path = self.out / 'progress.csv'
        self.last_s = initial_s

    def log(self, row: dict) -> None:
        step = int(row['env_steps'])
        if self.writer is not None:
            for key, value in row.items():
                if key not in ('epoch', 'env_steps'):
                    group = 'eval' if key in ('success_rate', 'return') else 'train'
                    self.writer.add_scalar(f'{group}/{key}', value, step)
            self.writer.flush()
        new = not self.csv_path.exists()
        with open(self.csv_path, 'a', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        self.bar.update(max(0, min(round(row['wall_s'] - self.last_s),
                                   self.bar.total - self.bar.n)))
        self.last_s = row['wall_s']
        self.bar.set_postfix(epoch=row['epoch'], steps=step,
                             success=f"{row['success_rate']:.2f}", ret=f"{row['return']:.1f}")

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
