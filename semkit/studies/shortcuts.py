"""Shortcuts over the studies: regions on stacked maps, and one shape seen under several looks."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import xarray as xr

from ..criterion import Criterion
from ..maps import interpolate
from ..regions import DEFAULT_STEP_RULE, find_regions
from ..scene import load_shape
from ..space import Space, recorded_space
from .stacking import stack


def looks(
    shape: Any,
    network: Any,
    looks: Mapping[str, Mapping[str, Any]],
    *,
    space: Space | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """One SemanticFunction per look: the same shape and network rendered with each look's Renderer options
    (e.g. ``{"white on black": {}, "materials on grey": {"materials": True, "background": 0.5}}``)."""
    from ..classify import Classifier, load_classifier
    from ..function import SemanticFunction
    from ..render import Renderer

    mesh = load_shape(shape)
    classifier = network if isinstance(network, Classifier) else load_classifier(network)
    size = image_size or classifier.input_size
    return {name: SemanticFunction(mesh, classifier, space=space, renderer=Renderer(image_size=size, **dict(options)))
            for name, options in looks.items()}


def map_regions(
    maps: xr.Dataset,
    starts: Any,
    methods: Sequence[Any] = ("naive", "oir_b", "oir_w"),
    *,
    space: Space | None = None,
    iterations: int = 600,
    step_rule: Any = DEFAULT_STEP_RULE,
    criterion: Criterion | str | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Regions grown on every map of a stack (``network`` x ``shape``; interpolated, so no renders), as one
    Dataset with those dims; the other arguments are :func:`~semkit.find_regions`'s."""
    from tqdm.auto import tqdm

    space = recorded_space(maps, space)
    pairs = [(n, s) for n in maps.network.values for s in maps.shape.values]
    found = {pair: find_regions(interpolate(maps.sel(network=pair[0], shape=pair[1]), space=space), starts, methods,
                                space=space, iterations=iterations, step_rule=step_rule, criterion=criterion,
                                progress=False)
             for pair in tqdm(pairs, desc="regions on maps", unit="map", disable=not progress)}
    rows = [[found[(n, s)] for s in maps.shape.values] for n in maps.network.values]
    out = stack(rows, list(maps.network.values), list(maps.shape.values))
    return out.assign_coords(label=maps.label, label_name=maps.label_name)
