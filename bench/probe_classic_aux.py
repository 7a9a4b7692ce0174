"""Probe: can a conv net read where the objects are *relative to the gripper* from a frame?

The classic task's aux targets (``KukaDiverseGraspEnv.aux_target``) give, per frame, the
gripper's xy, the object map around it (7x7 cells one move apart), the gripper point in the
frame and the object/robot masks. This trains three nets *supervised* on frames of random-
policy episodes (train objects, 80/20 split by episode order), each for the same CPU time:

* ``full``: the classic conv net over the whole frame (the shape of ``ConvQNet``);
* ``full+masks``: the same with the mask targets as well (a 1x1 conv on its second layer);
* ``crop``: the conv net over a crop of half the frame's width centred on the *true* gripper
  point (an upper bound for :class:`~pick_place_rl.core.dqn_nets.FovealQNet`, which finds the
  point itself).

It prints the held-out mean absolute error of the gripper xy, the object map and the nearest-
object offset against the best constant (the training median). Run::

    python bench/probe_classic_aux.py --episodes 1400 --seconds 120
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from pick_place_rl.sim.kuka_grasp_env import AUX_GRID, KukaDiverseGraspEnv

GRID = slice(6, 6 + AUX_GRID ** 2)
POINT = slice(GRID.stop, GRID.stop + 2)


def frames(episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames and aux targets of random-policy episodes on the train objects."""
    env = KukaDiverseGraspEnv(split='train')
    rng = np.random.default_rng(seed)
    obs_list, aux_list = [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        done = False
        while not done:
            obs_list.append(obs)
            aux_list.append(info['aux_target'])
            obs, _, terminated, truncated, info = env.step(int(rng.integers(7)))
            done = terminated or truncated
    env.close()
    return np.array(obs_list), np.array(aux_list, np.float32)


class Probe(nn.Module):
    def __init__(self, size: int, n_out: int, n_masks: int, width: int = 32) -> None:
        super().__init__()
        self.early = nn.Sequential(nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.late = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
                                  nn.ReLU(), nn.Flatten())
        n = 2 * width * (size // 8) ** 2
        self.head = nn.Sequential(nn.Linear(n, 256), nn.ReLU(), nn.Linear(256, n_out))
        self.masks = nn.Conv2d(width, n_masks, 1) if n_masks else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.early(x)
        out = self.head(self.late(fmap))
        if self.masks is not None:
            out = torch.cat([out, self.masks(fmap).flatten(1)], 1)
        return out


def crop(x: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 0.5
    theta[:, :, 2] = point
    size = x.shape[-1] // 2
    grid = F.affine_grid(theta, [len(x), 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, padding_mode='border', align_corners=False)


def run_probe(mode: str, obs: np.ndarray, aux: np.ndarray, seconds: float) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_vec = POINT.start  # gripper xy, offset, height, yaw, object map
    n_masks = 2 if mode == 'full+masks' else 0
    target = aux if n_masks else aux[:, :n_vec]
    size = obs.shape[1] // 2 if mode == 'crop' else obs.shape[1]
    net = Probe(size, n_vec, n_masks)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    cut = int(0.8 * len(obs))

    def predict(idx: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(obs[idx]).permute(0, 3, 1, 2).float() / 255.0
        if mode == 'crop':
            x = crop(x, torch.from_numpy(aux[idx, POINT]))
        out = net(x)
        if n_masks:  # the point's slot is not predicted: fill it with the target
            out = torch.cat([out[:, :n_vec], torch.from_numpy(aux[idx, POINT]),
                             out[:, n_vec:]], 1)
        return out

    start, steps = time.process_time(), 0
    while time.process_time() - start < seconds:
        idx = rng.integers(0, cut, 64)
        loss = F.huber_loss(predict(idx), torch.from_numpy(target[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    with torch.no_grad():
        err = np.abs(predict(np.arange(cut, len(obs))).numpy() - target[cut:]).mean(0)
    const = np.abs(aux[cut:] - np.median(aux[:cut], 0)).mean(0)
    return {'probe': mode, 'updates': steps,
            'gripper_xy': [round(float(err[:2].mean()), 3), round(float(const[:2].mean()), 3)],
            'object_map': [round(float(err[GRID].mean()), 4),
                           round(float(const[GRID].mean()), 4)],
            'nearest_offset': [round(float(err[2:4].mean()), 3),
                               round(float(const[2:4].mean()), 3)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--episodes', type=int, default=1400)
    ap.add_argument('--seed', type=int, default=5_000_000)
    ap.add_argument('--seconds', type=float, default=120.0, help='CPU seconds per probe')
    args = ap.parse_args()
    torch.set_num_threads(1)
    obs, aux = frames(args.episodes, args.seed)
    print(json.dumps({'frames': len(obs), 'note': '[net error, best constant] per target'}))
    for mode in ('full', 'full+masks', 'crop'):
        print(json.dumps(run_probe(mode, obs, aux, args.seconds)))


if __name__ == '__main__':
    main()
