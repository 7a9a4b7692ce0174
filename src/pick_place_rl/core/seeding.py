"""One place that seeds every random number generator the package uses."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy's legacy global state and torch; return a fresh numpy Generator.

    Code in this package takes the returned Generator explicitly instead of the global state;
    the global seeds only tame third-party code that still reads it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
