"""How trust results record their settings in attrs: the Space, units and grid steps as JSON text."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..space import Space


def state_attr(random_state: Any) -> int | str:
    """``random_state`` as an attr: the int itself, or words saying why the draws cannot be repeated from it."""
    if random_state is None:
        return "None (fresh entropy: not reproducible)"
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return "a numpy Generator (its state is not recorded: pass an int to repeat the draws)"
    return f"a {type(random_state).__name__} (not recorded: pass an int to repeat the draws)"


def space_json(space: Space) -> str:
    return json.dumps(space.to_dict())


def json_units(space: Space) -> str:
    return ", ".join(f"{p.name}: {p.units}" for p in space.parameters)


def json_steps(names: list[str], steps: list[float]) -> str:
    return json.dumps(dict(zip(names, steps)))
