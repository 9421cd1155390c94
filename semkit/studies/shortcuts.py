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
    """One SemanticFunction per look: the same shape and network rendered with each look's Renderer options.

    Parameters
    ----------
    shape : str or Mesh
        The shape, anything [`load_shape`][semkit.load_shape] takes.
    network : str or Classifier
        The network, a name or a [`Classifier`][semkit.Classifier].
    looks : mapping of str to mapping
        Each look's Renderer options by its name, e.g.
        ``{"white on black": {}, "materials on grey": {"materials": True, "background": 0.5}}``.
    space : Space, optional
        The Space of the functions; None: [`paper`][semkit.Space.paper]'s.
    image_size : int, optional
        The render size, in pixels; None: the network's input size.

    Returns
    -------
    dict of str to SemanticFunction
        One function per look, by the look's name (see [`semkit.plot.looks_figure`][semkit.plot.looks_figure]).
    """
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
    algorithms: Sequence[Any] = ("naive", "oir_b", "oir_w"),
    *,
    space: Space | None = None,
    iterations: int = 600,
    step_rule: Any = DEFAULT_STEP_RULE,
    criterion: Criterion | str | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Regions grown on every map of a stack, as one Dataset with its ``network`` and ``shape`` dims.

    The maps are interpolated ([`MapFunction`][semkit.maps.MapFunction]), so no renders.

    Parameters
    ----------
    maps : Dataset
        Stacked maps over ``network`` x ``shape``, e.g. from [`study`][semkit.study].
    starts : array or dict or Dataset
        Points of the Space to grow a box around, as [`find_regions`][semkit.find_regions] takes them.
    algorithms : sequence of str or RegionAlgorithm
        The region algorithms, by name (made with their defaults, ``step_rule`` and ``criterion``) or configured
        objects.
    space : Space, optional
        The maps' Space; None: the one they record.
    iterations : int
        At most this many steps per box.
    step_rule : str or StepRule
        How far each step of the paper's algorithms goes and when a box stops: a name or a step rule object.
    criterion : Criterion or str, optional
        What verified boxes must pass; None: top-1 correct (the paper's algorithms follow the score).
    progress : bool
        Show a progress bar over the maps.

    Returns
    -------
    Dataset
        [`find_regions`][semkit.find_regions]'s result per map, stacked over ``network`` and ``shape``, with the maps'
        ``label`` and ``label_name``.
    """
    from tqdm.auto import tqdm

    space = recorded_space(maps, space)
    pairs = [(n, s) for n in maps.network.values for s in maps.shape.values]
    found = {pair: find_regions(interpolate(maps.sel(network=pair[0], shape=pair[1]), space=space), starts, algorithms,
                                space=space, iterations=iterations, step_rule=step_rule, criterion=criterion,
                                progress=False)
             for pair in tqdm(pairs, desc="regions on maps", unit="map", disable=not progress)}
    rows = [[found[(n, s)] for s in maps.shape.values] for n in maps.network.values]
    out = stack(rows, list(maps.network.values), list(maps.shape.values))
    return out.assign_coords(label=maps.label, label_name=maps.label_name)
