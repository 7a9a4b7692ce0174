"""One gradient step of the classic grasp DQN (48x48 RGB conv net, batch 64) on this machine:
float32 against bf16 autocast, one-step targets against Monte Carlo (n-step) targets, with and
without the auxiliary head.

    python bench/bench_dqn_update.py

One JSON line per measurement (median of repeated timings, milliseconds). Monte Carlo targets
need no next-state pass, so the update runs one forward and backward pass instead of three
passes; bf16 pays off only on CPUs with native bfloat16 (see ``core/cpu_features.py``).
"""
from __future__ import annotations

from functools import partial
import json
import os

from bench_ddpg_update import time_ms
import torch

from pick_place_rl.core.cpu_features import native_bf16
from pick_place_rl.core.dqn import DQNAgent, DQNBatch, DQNParams
from pick_place_rl.core.dqn_nets import ConvQNet
from pick_place_rl.sim.kuka_grasp_env import AUX_DIM, AUX_MASKS


def batch(n: int, monte_carlo: bool, aux: bool) -> DQNBatch:
    def frames() -> torch.Tensor:
        return torch.randint(0, 256, (n, 48, 48, 3), dtype=torch.uint8)
    return DQNBatch(frames(), torch.randint(0, 7, (n,)), torch.rand(n), frames(),
                    torch.ones(n) if monte_carlo else torch.zeros(n),
                    torch.randn(n, AUX_DIM) if aux else None,
                    torch.full((n,), 0.9) if monte_carlo else None)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for bf16 in (False, True):
        for monte_carlo, aux in ((False, False), (True, False), (True, True)):
            agent = DQNAgent(ConvQNet(48, 7, 32, AUX_DIM if aux else 0, aux_masks=AUX_MASKS),
                             DQNParams(gamma=0.9, bf16=bf16, aux_weight=1.0 if aux else 0.0))
            b = batch(64, monte_carlo, aux)
            ms = time_ms(partial(agent.update, b), repeat=15, warmup=3)
            print(json.dumps({'what': 'dqn_update', 'bf16': bf16,
                              'targets': 'monte_carlo' if monte_carlo else 'one_step',
                              'aux': aux, 'batch': 64, 'ms': round(ms, 1)}))
    print(json.dumps({'cpus': os.cpu_count(), 'native_bf16': native_bf16(),
                      'loadavg_1m': round(os.getloadavg()[0], 2), 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
