"""Plug-ins by name: one registry pattern for region algorithms, step rules and failure searches.

A `Registry` maps names to classes. Built-in entries are written as
``"module:Class"`` paths and imported on first use, so a name is known
whatever was imported before (no import side effects); a user's class joins
with `Registry.register`. ``registry.create(spec, defaults)`` turns
a name into an object made with the defaults its class takes, and returns an
object as it is.

Plug-in objects are `Configurable`, as scikit-learn's estimators
are: their options are their constructor's keywords, validated when the
object is made, listed by `Configurable.get_params` (what stores
fingerprint) and shown by their ``repr``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
from typing import Any, Generic, Mapping, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind of plug-in (``kind``, as errors name it) by name."""

    def __init__(self, kind: str, base: str, entries: Mapping[str, str]) -> None:
        self.kind, self._base = kind, base
        self._entries: dict[str, "str | type[T]"] = dict(entries)

    def register(self, cls: type[T], name: str | None = None) -> type[T]:
        """Make ``cls`` known by ``name`` (default: its ``name`` attribute); usable as a decorator."""
        key = name or getattr(cls, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"a {self.kind} needs a name: give the class a `name` attribute or pass name=")
        self._entries[key] = cls
        return cls

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> type[T]:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; choose from {self.names()}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, attr = entry.split(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attr)
        return entry

    def create(self, spec: "str | T", defaults: Mapping[str, Any] | None = None) -> T:
        """The object ``spec`` names, made with those ``defaults`` its class takes; an object is returned as it is."""
        if not isinstance(spec, str):
            base = self._base_class()
            if base is not None and not isinstance(spec, base):
                raise TypeError(f"a {self.kind} is a name from {self.names()} or a {base.__name__} object, got {spec!r}")
            return spec
        cls = self[spec]
        taken = inspect.signature(cls).parameters
        return cls(**{k: v for k, v in (defaults or {}).items() if k in taken})

    def _base_class(self) -> type | None:
        module, attr = self._base.split(":")
        return getattr(importlib.import_module(module), attr)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"


class Configurable:
    """An object described by its constructor's keywords (kept as attributes of the same names)."""

    def get_params(self) -> dict[str, Any]:
        """The options this object was made with, as plain values (nested plug-ins as their own params)."""
        out = {}
        for name in inspect.signature(type(self)).parameters:
            value = getattr(self, name)
            out[name] = value.describe() if isinstance(value, Configurable) else _plain(value)
        return out

    def describe(self) -> dict[str, Any]:
        """Name and options: what determines this object's results (stores are matched on it)."""
        return {"name": getattr(self, "name", type(self).__name__), **self.get_params()}

    def __repr__(self) -> str:
        defaults = {k: p.default for k, p in inspect.signature(type(self)).parameters.items()}
        shown = [f"{k}={getattr(self, k)!r}" for k, d in defaults.items()
                 if d is inspect.Parameter.empty or not _same(getattr(self, k), d)]
        return f"{type(self).__name__}({', '.join(shown)})"


def _plain(value: Any) -> Any:
    if hasattr(value, "spec") and callable(value.spec):  # a Criterion
        return value.spec()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, Configurable) and isinstance(default, str):  # a plug-in given by name, with its defaults
        return getattr(value, "name", None) == default and repr(value) == f"{type(value).__name__}()"
    try:
        return bool(value == default) if not isinstance(value, Configurable) else False
    except (TypeError, ValueError):
        return False


def positive(name: str, value: Any) -> float:
    """``value`` as a positive finite float, or an error naming the option ``name``."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number
