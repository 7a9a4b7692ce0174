"""Probe: how much of a classic grasp's outcome can the conv net read from the last frame?

The classic DQN (``KukaDiverseGrasp-v0``) barely beats random in 60 CPU minutes while a
scripted policy with the true object positions lifts ~0.73. This separates learning where to
go from seeing it: the classic conv net is trained *supervised* (binary cross-entropy) to predict
the lift from the last frame and the last move, on the final transitions of a DQN run's replay
(``replay.npz``, written every epoch), 80/20 split. A held-out AUC near 0.5 means the frames at
this data size carry little of what decides a grasp; near 1, the RL targets are the problem.

Run: ``python bench/probe_classic_frames.py --replay runs/dqn_grasp60/replay.npz``
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from pick_place_rl.core.dqn_nets import ConvQNet


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U); ties are rare for float scores."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(len(scores))
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    return float((ranks[pos].mean() - (n_pos - 1) / 2) / n_neg)


def random_shift(x: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """One random translation of the whole batch by up to ``pad`` pixels (edges replicated)."""
    size = x.shape[1]
    chw = F.pad(x.permute(0, 3, 1, 2).float(), (pad,) * 4, mode='replicate')
    dx, dy = rng.integers(0, 2 * pad + 1, 2)
    return chw[:, :, dy:dy + size, dx:dx + size].permute(0, 2, 3, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--replay', required=True, help='replay.npz of a dqn-grasp run')
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--shift', type=int, default=0, help='random-shift augmentation (px)')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    with np.load(args.replay) as data:
        last = data['dones'] > 0.5
        obs = torch.from_numpy(data['obs'][last])
        actions = torch.from_numpy(data['actions'][last])
        rewards = data['rewards'][last]
    labels = torch.from_numpy(rewards)
    order = rng.permutation(len(rewards))
    train, test = order[: int(0.8 * len(order))], order[int(0.8 * len(order)):]
    net = ConvQNet(obs.shape[1], 7, 32)
    opt = torch.optim.Adam(net.parameters(), 5e-4)

    @torch.no_grad()
    def scores(idx: np.ndarray) -> np.ndarray:
        return torch.cat([net(obs[idx[i:i + 256]]).gather(1, actions[idx[i:i + 256], None])
                          .squeeze(1) for i in range(0, len(idx), 256)]).numpy()

    rows = []
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        for i in range(0, len(train), 64):
            b = train[i:i + 64]
            x = random_shift(obs[b], args.shift, rng) if args.shift else obs[b]
            logit = net(x).gather(1, actions[b, None]).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logit, labels[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rows.append({'epoch': epoch, 'test_auc': round(auc(scores(test), rewards[test]), 3),
                     'train_auc': round(auc(scores(train[:2000]), rewards[train[:2000]]), 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({'final_transitions': len(rewards),
                      'success_rate': round(float(rewards.mean()), 3), 'shift_px': args.shift,
                      'best_test_auc': max(r['test_auc'] for r in rows),
                      'last': rows[-1]}))


if __name__ == '__main__':
    main()
