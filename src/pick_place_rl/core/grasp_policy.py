"""Grasp-net inference: load a shipped DQN checkpoint, turn one camera image into a grasp.

Used by the policy node and the benchmarks; numpy + torch only. Two networks are served:

* ``dqn_grasp_qmap`` (pixel-wise): input float32 (4, S, S) = RGB in [0, 1] + height above the
  tray floor in m (the overhead image of ``KukaPixelGraspEnv``); output the best (yaw bin, row,
  column) with its Q-value (the predicted grasp success probability, since targets are 0/1).
* ``dqn_grasp_conv`` (classic closed loop): input uint8 (H, W, 3); output the best of the 7
  moves.

Every input is checked against the shapes the checkpoint was trained on; a wrong image size or
layout raises :class:`ValueError` naming expected and given shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

import numpy as np
import torch

from pick_place_rl.core.checkpoint import CheckpointError, load_checkpoint
from pick_place_rl.core.dqn_nets import build_net, KIND_CONV, KIND_QMAP


@dataclass(frozen=True)
class Grasp:
    """A pixel-wise grasp: where in the image, the gripper yaw, and its predicted value."""

    row: int
    col: int
    yaw_bin: int
    yaw: float       # rad, the gripper yaw the env executes for ``yaw_bin``
    q: float
    action: int      # flat action index of the env


class GraspPolicy:
    """A loaded grasp network; ``kind`` must match the checkpoint (else CheckpointError)."""

    def __init__(self, path: Path, kind: str = KIND_QMAP, threads: int | None = None) -> None:
        if kind not in (KIND_QMAP, KIND_CONV):
            raise ValueError(f'unknown grasp network kind {kind!r}; choose from '
                             f'{(KIND_QMAP, KIND_CONV)}')
        payload = load_checkpoint(path, kind)
        self.kind = kind
        self.spec = dict(payload['spec'])
        try:
            self.net = build_net(kind, self.spec)
            self.net.load_state_dict(payload['state']['online'])
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f'{path}: weights do not fit a {kind} net ({exc})') from None
        self.net.eval()
        if threads is not None:
            torch.set_num_threads(threads)
        size = self.spec['image_size']
        if kind == KIND_QMAP:
            self.input_shape: tuple[int, ...] = (self.spec['in_channels'], size, size)
            self.input_dtype = np.float32
        else:
            self.input_shape = (size, size, 3)
            self.input_dtype = np.uint8

    def check(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.shape != self.input_shape:
            raise ValueError(f'{self.kind} expects an image of shape {self.input_shape} '
                             f'({np.dtype(self.input_dtype).name}), got {image.shape}')
        if not np.all(np.isfinite(image)):
            raise ValueError('image contains NaN or infinite values')
        return image.astype(self.input_dtype, copy=False)

    @torch.no_grad()
    def q_values(self, image: np.ndarray) -> np.ndarray:
        """All Q-values for one image: (n_yaw, S, S) for the Q-map, (7,) for the conv net."""
        x = torch.from_numpy(np.ascontiguousarray(self.check(image)))[None]
        q = self.net(x)[0].numpy()
        if self.kind == KIND_QMAP:
            s = self.spec['image_size']
            return q.reshape(self.spec['n_yaw'], s, s)
        return q

    def act(self, image: np.ndarray) -> int:
        """Flat action index of the env the net was trained on (greedy)."""
        return int(self.q_values(image).argmax())

    def grasp(self, image: np.ndarray) -> Grasp:
        """Best pixel-wise grasp of an overhead image (Q-map networks only)."""
        if self.kind != KIND_QMAP:
            raise ValueError(f'grasp() needs a {KIND_QMAP} network, this is {self.kind}')
        q = self.q_values(image)
        yaw_bin, row, col = np.unravel_index(int(q.argmax()), q.shape)
        return Grasp(int(row), int(col), int(yaw_bin), yaw_bin * math.pi / self.spec['n_yaw'],
                     float(q[yaw_bin, row, col]), int(q.argmax()))
