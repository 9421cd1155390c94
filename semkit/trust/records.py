"""How trust results record their settings in attrs: the Space, units and grid steps as JSON text."""

from __future__ import annotations

import json

from ..space import Space


def space_json(space: Space) -> str:
    return json.dumps(space.to_dict())


def json_units(space: Space) -> str:
    return ", ".join(f"{p.name}: {p.units}" for p in space.parameters)


def json_steps(names: list[str], steps: list[float]) -> str:
    return json.dumps(dict(zip(names, steps)))
