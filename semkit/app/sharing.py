"""Keep and share an explorer: its state as JSON-serialisable values, and the explorer a state describes.

A state names everything that makes the explorer (shapes by file or gallery name, networks by name, the view,
the criterion, the map's axes and step, the Space, the renderer's options) so that it can be saved beside a
notebook, sent to a colleague, and reopened with the same renders and answers.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..classify import Classifier
from ..criterion import Criterion
from ..scene import Mesh
from ..space import Space
from ..version import VERSION


def state_of(explorer: Any, sources: Sequence[Any]) -> dict[str, Any]:
    """``explorer``'s state; ``sources`` are the shapes as it was given them."""
    shapes = []
    for given, name in zip(sources, explorer.meshes):
        if isinstance(given, Mesh):
            if not given.source:
                raise ValueError(f"shape {name!r} was given as a Mesh made in memory, which a state cannot name: give "
                                 "the explorer its file or gallery name instead")
            given = given.source
        shapes.append(str(given))
    try:
        json.dumps(explorer.renderer_options)
    except TypeError as e:
        raise ValueError(f"renderer_options hold a value JSON cannot keep ({e}): keep to numbers, text and lists") from None
    return {
        "semkit": VERSION, "shapes": shapes, "networks": explorer.networks, "shape": explorer.shape, "network": explorer.network,
        "compare": explorer.compare, "point": dict(explorer.point), "criterion": explorer.criterion.spec(), "axes": list(explorer.axes),
        "step": explorer.step.tolist(), "space": explorer.space.to_dict(), "store": None if explorer.store is None else str(explorer.store),
        "image_size": explorer.image_size, "renderer_options": dict(explorer.renderer_options),
        "random_state": explorer.random_state,
    }

def reopened(cls: type, state: Mapping[str, Any], networks: Sequence[Classifier] | None) -> Any:
    """The explorer (of class ``cls``) that ``state`` describes; ``networks`` replace those named alike."""
    needed = {"shapes", "networks", "shape", "network", "point", "criterion", "axes", "step", "space"}
    missing = needed - set(state)
    if missing:
        raise ValueError(f"this is not an explorer's state: it lacks {sorted(missing)} (use Explorer.state)")
    given = {c.name: c for c in networks or ()}
    spec = state["criterion"]
    explorer = cls(
        state["shapes"], [given.get(n, n) for n in state["networks"]], space=Space.from_dict(state["space"]),
        axes=state["axes"], step=state["step"], criterion=Criterion(spec["kind"], spec["value"], spec["label"]),
        store=state.get("store"), image_size=state.get("image_size"), renderer_options=state.get("renderer_options"),
        random_state=state.get("random_state", 0),
    )
    return explorer.set(shape=state["shape"], network=state["network"], compare=state.get("compare"), **state["point"])
