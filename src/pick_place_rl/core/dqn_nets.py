"""Q-networks of the DQN tasks, and the checkpoint kind string of each.

The kind string is stored in every checkpoint; loading a file of one network as another raises
:class:`~pick_place_rl.core.checkpoint.CheckpointError` instead of a shape error deep in torch.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from pick_place_rl.core.networks import FP32Linear

KIND_CONV = 'dqn_grasp_conv'
KIND_QMAP = 'dqn_grasp_qmap'
KIND_MLP = 'dqn_reacher_mlp'
KINDS = (KIND_CONV, KIND_QMAP, KIND_MLP)


class ConvQNet(nn.Module):
    """The classic grasping Q-net: uint8 RGB (B, H, W, 3) -> Q of the discrete moves.

    Three strided convolutions and a 256-unit layer: small enough for thousands of updates per
    minute on one CPU core at 48x48. With ``aux_dim`` > 0 a linear head on the 256 units
    regresses auxiliary targets (:meth:`forward_aux`, training only): it makes the shared
    features learn where the gripper and the objects are from every frame, not from the one
    lift bit per episode.
    """

    def __init__(self, image_size: int = 48, n_actions: int = 7, width: int = 32,
                 aux_dim: int = 0, coords: bool = False, aux_masks: int = 0) -> None:
        super().__init__()
        self.image_size, self.n_actions, self.aux_dim = image_size, n_actions, aux_dim
        # CoordConv (Liu et al., 2018): two input channels holding each pixel's row and column
        # in [-1, 1], so the filters can tell where in the frame they are, not only what.
        self.coords = coords
        if coords:
            ramp = torch.linspace(-1.0, 1.0, image_size)
            grid = torch.stack(torch.meshgrid(ramp, ramp, indexing='ij'))[None]
            self.register_buffer('coord_grid', grid, persistent=False)
        self.features = nn.Sequential(
            nn.Conv2d(5 if coords else 3, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten())
        with torch.no_grad():
            n = self.features(torch.zeros(1, 5 if coords else 3, image_size, image_size)).shape[1]
        # The output layer stays float32 under bfloat16 autocast: Q in [0, 1] needs finer steps
        # than bfloat16's 8-bit mantissa between actions (same state_dict as nn.Linear).
        self.head = nn.Sequential(nn.Linear(n, 256), nn.ReLU(), FP32Linear(256, n_actions))
        # The last aux_masks * (S/4)**2 aux targets are masks at a quarter of the frame size,
        # predicted by a 1x1 conv on the second conv layer's map (aligned with the frame); the
        # rest by a linear layer on the 256 units.
        self.aux_masks = aux_masks
        n_maps = aux_masks * (image_size // 4) ** 2
        if aux_dim and n_maps > aux_dim:
            raise ValueError(f'aux_dim={aux_dim} is smaller than its {n_maps} mask targets')
        self.aux_head = FP32Linear(256, aux_dim - n_maps) if aux_dim else None
        self.mask_head = nn.Conv2d(width, aux_masks, 1) if aux_dim and aux_masks else None

    def _input(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.permute(0, 3, 1, 2).float() / 255.0
        if self.coords:
            x = torch.cat([x, self.coord_grid.expand(len(x), -1, -1, -1)], 1)
        return x

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self._input(obs)))

    def forward_aux(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-values and the auxiliary head's predictions, from one pass of the features."""
        if self.aux_head is None:
            raise ValueError('this ConvQNet has no auxiliary head (aux_dim=0)')
        x = self._input(obs)
        fmap = self.features[:4](x)  # two strided convs: (B, width, S/4, S/4)
        hidden = self.head[1](self.head[0](self.features[4:](fmap)))
        aux = self.aux_head(hidden)
        if self.mask_head is not None:
            masks = self.mask_head(fmap).float().flatten(1)
            aux = torch.cat([aux, masks], 1)
        return self.head[2](hidden), aux


class FovealQNet(nn.Module):
    """Classic grasping Q-net that looks twice: a small net over the whole frame finds where the
    gripper is above the tray, and the Q-values come from a crop of the frame around that point
    (half the frame's width) with the small net's features as context.

    Why: a plain conv net learns where the gripper is and which pixels are objects, but not
    where the objects are *relative to the gripper*, which is what a grasp needs. Supervised on
    7,000 frames (``bench/probe_classic_aux.py``), its error on the object map around the
    gripper was 0.122, a constant's 0.122. Cropping around the gripper turns that relation
    into a local pattern, which convolutions learn fast: at the true gripper point the same net
    reached 0.095, at 2.5x the updates per CPU-second. The point is trained by the auxiliary
    loss (the env's ``gripper_pixel``), never given: at run time the net reads the frame alone.

    ``forward_aux`` returns the auxiliary predictions in the env's ``aux_target`` order:
    ``aux_dim - 2 - n_masks`` values from the hidden layer, the gripper point, the masks.
    """

    def __init__(self, image_size: int = 48, n_actions: int = 7, width: int = 32,
                 aux_dim: int = 0, aux_masks: int = 0, crop_scale: float = 0.5) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f'FovealQNet image_size must be a multiple of 8, got {image_size}')
        self.image_size, self.n_actions, self.aux_dim = image_size, n_actions, aux_dim
        self.crop_scale, self.crop = crop_scale, image_size // 2
        half = width // 2
        self.locator = nn.Sequential(
            nn.Conv2d(3, half, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride=2, padding=1), nn.ReLU())
        self.context = nn.Sequential(
            nn.Conv2d(half, width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        n_context = width * (image_size // 8) ** 2
        self.point = nn.Sequential(nn.Linear(n_context, 64), nn.ReLU(), nn.Linear(64, 2),
                                   nn.Tanh())
        self.fovea = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        n_fovea = 2 * width * (self.crop // 8) ** 2
        self.hidden = nn.Sequential(nn.Linear(n_fovea + n_context, 256), nn.ReLU())
        self.q = FP32Linear(256, n_actions)
        n_maps = aux_masks * (image_size // 4) ** 2
        if aux_dim and aux_dim < n_maps + 2:
            raise ValueError(f'aux_dim={aux_dim} is smaller than the gripper point and its '
                             f'{n_maps} mask targets')
        self.aux_head = FP32Linear(256, aux_dim - 2 - n_maps) if aux_dim else None
        self.mask_head = nn.Conv2d(half, aux_masks, 1) if aux_dim and aux_masks else None

    def _parts(self, obs: torch.Tensor):
        x = obs.permute(0, 3, 1, 2).float() / 255.0
        fmap = self.locator(x)
        context = self.context(fmap)
        point = self.point(context).float()
        theta = torch.zeros(len(x), 2, 3, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = self.crop_scale
        theta[:, :, 2] = point.detach()  # the crop follows the point; the aux loss trains it
        grid = F.affine_grid(theta, [len(x), 3, self.crop, self.crop], align_corners=False)
        crop = F.grid_sample(x, grid, padding_mode='border', align_corners=False)
        hidden = self.hidden(torch.cat([self.fovea(crop), context], 1))
        return hidden, point, fmap

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(self._parts(obs)[0])

    def forward_aux(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-values and the auxiliary predictions (aux_target order), from one pass."""
        if self.aux_head is None:
            raise ValueError('this FovealQNet has no auxiliary head (aux_dim=0)')
        hidden, point, fmap = self._parts(obs)
        parts = [self.aux_head(hidden), point]
        if self.mask_head is not None:
            parts.append(self.mask_head(fmap).float().flatten(1))
        return self.q(hidden), torch.cat(parts, 1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


class QMapNet(nn.Module):
    """Small U-Net: (B, C, S, S) image -> (B, n_yaw * S * S) Q-map, one value per grasp.

    Output index ``(yaw_bin * S + row) * S + col`` (the pixel env's action index). A fully
    convolutional net shares weights over pixels, so one attempt teaches every position
    (translation equivariance), which is what makes pixel-wise grasping learn from few attempts.
    """

    def __init__(self, image_size: int = 32, in_channels: int = 4, n_yaw: int = 4,
                 width: int = 16) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f'QMapNet image_size must be a multiple of 4, got {image_size}')
        self.image_size, self.n_yaw = image_size, n_yaw
        self.n_actions = n_yaw * image_size * image_size
        self.enc1 = _block(in_channels, width)
        self.enc2 = _block(width, 2 * width)
        self.mid = _block(2 * width, 4 * width)
        self.dec2 = _block(4 * width + 2 * width, 2 * width)
        self.dec1 = _block(2 * width + width, width)
        self.head = nn.Conv2d(width, n_yaw, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float()
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1))
        return self.head(d1).flatten(1)


class MLPQNet(nn.Module):
    """Vector observation -> Q of discrete actions (the joint-space reacher)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128) -> None:
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float())


def build_net(kind: str, spec: dict) -> nn.Module:
    """Network of ``kind`` from the shapes in a checkpoint's ``spec``."""
    if kind == KIND_CONV and spec.get('fovea'):
        return FovealQNet(spec['image_size'], spec['n_actions'], spec.get('width', 32),
                          spec.get('aux_dim', 0), spec.get('aux_masks', 0))
    if kind == KIND_CONV:
        return ConvQNet(spec['image_size'], spec['n_actions'], spec.get('width', 32),
                        spec.get('aux_dim', 0), bool(spec.get('coords', False)),
                        spec.get('aux_masks', 0))
    if kind == KIND_QMAP:
        return QMapNet(spec['image_size'], spec['in_channels'], spec['n_yaw'],
                       spec.get('width', 16))
    if kind == KIND_MLP:
        return MLPQNet(spec['obs_dim'], spec['n_actions'], spec.get('hidden', 128))
    raise ValueError(f'unknown DQN network kind {kind!r}; choose from {KINDS}')
