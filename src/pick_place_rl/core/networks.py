"""Actor and critic MLPs of the HER recipe (3 hidden layers of 256, ReLU)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class FP32Linear(nn.Linear):
    """Output layer that stays in float32 under bfloat16 autocast.

    Q-values of sparse-reward tasks live in [-50, 0]; bfloat16's 8-bit mantissa would round them
    to ~0.1, the size of the TD errors the critic must resolve. The hidden layers, where nearly
    all the FLOPs are, may run in bfloat16.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.float(), self.weight, self.bias)


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    last = in_dim
    for _ in range(layers):
        mods += [nn.Linear(last, hidden), nn.ReLU()]
        last = hidden
    mods.append(FP32Linear(last, out_dim))
    return nn.Sequential(*mods)


class Actor(nn.Module):
    """Deterministic policy ``a = max_action * tanh(f(obs, goal))``."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int = 256, layers: int = 3,
                 max_action: float = 1.0) -> None:
        super().__init__()
        self.net = mlp(in_dim, act_dim, hidden, layers)
        self.max_action = max_action

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.net(x))


class Critic(nn.Module):
    """Q(obs, goal, action); the action is scaled to [-1, 1] before it enters the net."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int = 256, layers: int = 3,
                 max_action: float = 1.0) -> None:
        super().__init__()
        self.net = mlp(in_dim + act_dim, 1, hidden, layers)
        self.max_action = max_action

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, action / self.max_action], dim=-1)).squeeze(-1)


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target``; ``tau`` is the weight on the online net."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, tau)
