"""Training curves as PNG (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def plot_curve(history: list[dict], path: Path, title: str = '',
               key: str = 'success_rate') -> None:
    """Evaluation ``key`` against wall-clock minutes."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if history:
        ax.plot([h['wall_s'] / 60.0 for h in history], [h[key] for h in history], marker='.')
    ax.set_xlabel('wall clock (min)')
    ax.set_ylabel(key.replace('_', ' '))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
