"""Config dataclasses as the single source of CLI flags and ROS parameters.

Every trainer and node owns one frozen dataclass. Its fields, with a ``help`` string in the field
metadata, generate the argparse flags (here) and the ROS parameters (``nodes/params.py``), so no
flag or parameter exists that nothing reads.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar('T')


def field(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """Declare a config field with its documentation (used for --help and ROS descriptors)."""
    if isinstance(default, (list, dict, tuple)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value),
                                 metadata={'help': help, **kwargs})
    return dataclasses.field(default=default, metadata={'help': help, **kwargs})


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type of each dataclass field (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_help(f: dataclasses.Field) -> str:
    return str(f.metadata.get('help', ''))


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ('1', 'true', 'yes', 'on'):
        return True
    if lowered in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean, got {text!r}')


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type,
                       skip: tuple[str, ...] = ()) -> None:
    """Add one ``--flag-name`` per field of ``cls`` (defaults left as None = use dataclass)."""
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = '--' + f.name.replace('_', '-')
        kind = types[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        helptext = f'{field_help(f)} (default: {default!r})'
        origin = typing.get_origin(kind)
        if kind is bool:
            parser.add_argument(flag, type=_parse_bool, default=None, metavar='BOOL',
                                help=helptext)
        elif origin in (list, tuple):
            (item,) = set(typing.get_args(kind)) - {Ellipsis}
            parser.add_argument(flag, type=item, nargs='+', default=None, help=helptext)
        elif kind in (int, float, str):
            choices = f.metadata.get('choices')
            parser.add_argument(flag, type=kind, default=None, choices=choices, help=helptext)


def from_namespace(cls: type[T], ns: argparse.Namespace, base: T | None = None) -> T:
    """Build ``cls`` from parsed flags; flags left unset keep ``base``'s (or default) values."""
    values = dataclasses.asdict(base) if base is not None else {}
    for f in dataclasses.fields(cls):
        given = getattr(ns, f.name, None)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(given, list) else given
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict of a config (tuples as lists, for JSON and checkpoints)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Inverse of :func:`to_dict`; unknown keys are an error, missing keys take defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f'unknown {cls.__name__} fields: {sorted(unknown)}')
    types = field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if typing.get_origin(types[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
