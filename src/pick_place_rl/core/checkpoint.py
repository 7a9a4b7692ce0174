"""Versioned, atomically written checkpoints that never execute code on load.

A checkpoint is a plain dict::

    {'format_version': 1, 'kind': 'ddpg_her' | 'dqn' | ..., 'config': {...},
     'spec': {shapes the weights were built for}, 'state': {tensors, normalizer arrays, ...}}

It is written with ``torch.save`` to a temporary file in the same folder, fsynced and renamed
over the target (a reader sees the old or the new file, never half of one), and read with
``torch.load(weights_only=True)``, which refuses anything but tensors, numbers, strings and
containers (no pickled code).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
import tempfile
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, of another format version, kind or shape."""


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + path.name + '.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + '\n').encode())


def atomic_write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_write_bytes(path, buf.getvalue())


def _to_torch(obj: Any) -> Any:
    """numpy arrays -> tensors so that weights_only loading accepts them."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(path: Path, kind: str, config: dict, spec: dict, state: dict) -> None:
    payload = {'format_version': FORMAT_VERSION, 'kind': kind, 'config': config,
               'spec': spec, 'state': _to_torch(state)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    _atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, kind: str, spec: dict | None = None) -> dict:
    """Load and check a checkpoint; raise :class:`CheckpointError` naming the problem.

    ``spec``: the shapes the caller will build (e.g. obs/goal/action sizes); any key present in
    both that differs is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt files
        detail = str(exc).splitlines()[0][:200] if str(exc) else ''
        raise CheckpointError(f'checkpoint {path} is corrupt or not a checkpoint '
                              f'({type(exc).__name__}: {detail})') from None
    if not isinstance(payload, dict) or 'format_version' not in payload:
        raise CheckpointError(f'{path} is not a pick_place_rl checkpoint')
    if payload['format_version'] != FORMAT_VERSION:
        raise CheckpointError(f'{path} has checkpoint format version {payload["format_version"]}'
                              f', this build reads version {FORMAT_VERSION}')
    if payload.get('kind') != kind:
        raise CheckpointError(f'{path} holds a {payload.get("kind")!r} checkpoint, '
                              f'expected {kind!r}')
    for key, want in (spec or {}).items():
        have = payload['spec'].get(key)
        if have is not None and have != want:
            raise CheckpointError(f'{path}: {key} is {have} in the checkpoint, expected {want}')
    return payload


def to_numpy_tree(obj: Any) -> Any:
    """Tensors -> numpy arrays (for normalizer state read back from a checkpoint)."""
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    return obj
