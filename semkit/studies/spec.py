"""What a study computes, as one value: [`StudySpec`][semkit.StudySpec], with what each pair gets ([`Maps`][semkit.Maps], [`Regions`][semkit.Regions]).

A spec names the shapes, the networks and what to compute for each pair,
each kind of work with its own options on its own object (so no option
depends on another's value); [`study`][semkit.study] runs it here or on Dask.
Every spec is checked when it is made, before any work or any store, and
turns into the settings a study's store is recognised by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..classify import BUNDLED, Classifier, load_classifier
from ..classify.classifier import check_precision
from ..criterion import Criterion
from ..maps import resolve_max_error
from ..regions import ALGORITHMS, DEFAULT_STEP_RULE, STEP_RULES, StepRule
from ..space import Space
from ..store import versioned
from ..validation import check_count

@lru_cache(maxsize=8)
def cached_classifier(name: str, precision: str = "float32"):
    """A network by name in a precision, loaded once per (worker) process (the 8 most recently used)."""
    return load_classifier(name, precision=precision)


#: The starts of a region study unless given (azimuth, elevation in degrees).
DEFAULT_STARTS = ((130, 30), (50, 20), (200, 15), (310, 50))


def _names(value: Any, what: str) -> tuple:
    """A sequence of names as a tuple; a single string is refused (it would be split into characters)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{what} is a list, got {value!r}: write [{value!r}] for one")
    if not len(value):
        raise ValueError(f"a study needs at least one {what[:-1]}")
    return tuple(value)


@dataclass(frozen=True)
class Maps:
    """Dense maps of each pair: what a map study computes (see [`semantic_map`][semkit.semantic_map]).

    Each view is rendered once for every network.

    Parameters
    ----------
    step : float, sequence of float or mapping of str to float, optional
        The grid's spacing over the study's Space ([`Space.grid`][semkit.Space.grid]); None: the Space's default step.
    adaptive : bool, default False
        Refine only the cells that interpolation cannot be trusted with (see `semkit.maps.adaptive`).
    max_error : float, optional
        With ``adaptive``: the bound on the estimated interpolation error of the score; None:
        `semkit.maps.DEFAULT_MAX_ERROR`.

    Raises
    ------
    TypeError
        ``adaptive`` is not a bool, or ``max_error`` not a number.
    ValueError
        ``max_error`` without ``adaptive``, or not positive.
    """

    step: Any = None
    adaptive: bool = False
    max_error: float | None = None

    kind = "map"

    def __post_init__(self) -> None:
        if not isinstance(self.adaptive, bool):
            raise TypeError(f"adaptive is True or False, got {self.adaptive!r}")
        if self.max_error is not None:
            if not self.adaptive:
                raise ValueError("max_error= is for adaptive maps: pass adaptive=True as well")
            resolve_max_error(self.max_error)

    def settings(self, space: Space) -> dict[str, Any]:
        """What these maps compute in ``space``, as plain values (a study's store is recognised by them).

        Parameters
        ----------
        space : Space
            The study's Space.

        Returns
        -------
        dict
            The grid per parameter, and the adaptive map's ``max_error`` when adaptive.

        Raises
        ------
        ValueError
            If ``step`` does not fit the Space.
        """
        out: dict[str, Any] = {"grid": {k: [float(x) for x in v] for k, v in space.grid(self.step).items()}}
        if self.adaptive:
            out["adaptive"] = {"max_error": resolve_max_error(self.max_error)}
        return out


@dataclass(frozen=True)
class Regions:
    """Region searches of each pair: what a region study computes (see [`find_regions`][semkit.find_regions]).

    Parameters
    ----------
    starts : array, default DEFAULT_STARTS
        Points of the study's Space to grow boxes from; by default four (azimuth, elevation) views.
    algorithms : sequence of str or RegionAlgorithm, default ("naive", "oir_b")
        Names in `ALGORITHMS` or configured algorithm objects.
    iterations : int, default 600
        The most steps a search takes.
    step_rule : str or StepRule, default "faithful"
        How the paper's algorithms step ("faithful", "adaptive", or a [`StepRule`][semkit.regions.StepRule] object).
    criterion : Criterion or str, optional
        What a verified box's views must pass; None: top-1 correct. Only with "verified" among ``algorithms``.

    Raises
    ------
    ValueError
        No starts or no algorithms, an unknown algorithm or step rule, ``iterations`` not a whole number of at
        least 1, ``criterion`` without "verified".
    """

    starts: Any = DEFAULT_STARTS
    algorithms: Sequence[Any] = ("naive", "oir_b")
    iterations: int = 600
    step_rule: "str | StepRule" = DEFAULT_STEP_RULE
    criterion: Criterion | str | None = None

    kind = "regions"

    def __post_init__(self) -> None:
        chosen = (self.algorithms,) if isinstance(self.algorithms, str) else tuple(self.algorithms)
        if not chosen:
            raise ValueError(f"a region study needs at least one algorithm; choose from {ALGORITHMS.names()}")
        algorithms = [ALGORITHMS.create(a) for a in chosen]  # unknown names and bad objects are named here
        object.__setattr__(self, "algorithms", chosen)
        check_count(self.iterations, "iterations")
        STEP_RULES.create(self.step_rule)
        if np.size(self.starts) == 0:
            raise ValueError("a region study needs at least one start, e.g. [[130, 30]]")
        if self.criterion is not None:
            Criterion.resolve(self.criterion)
            if not any(m.needs_classes for m in algorithms):
                raise ValueError("criterion= judges verified boxes: add 'verified' to algorithms, or leave criterion "
                                 "out (the paper's algorithms follow the score)")

    def settings(self, space: Space) -> dict[str, Any]:
        """What these searches compute in ``space``, as plain values (a study's store is recognised by them).

        Parameters
        ----------
        space : Space
            The study's Space.

        Returns
        -------
        dict
            The starts, the region algorithms, ``iterations``, the step rule, and the criterion where an algorithm judges by
            one.

        Raises
        ------
        ValueError
            If the starts do not fit the Space.
        """
        rule = STEP_RULES.create(self.step_rule)
        out = {"starts": space.points(self.starts).tolist(),
               "algorithms": [a if isinstance(a, str) else a.describe() for a in self.algorithms],
               "iterations": int(self.iterations), "step_rule": rule.describe()}
        if any(ALGORITHMS.create(a).needs_classes for a in self.algorithms):  # stored (the default spelled out, so an
            out["criterion"] = Criterion.resolve(self.criterion).spec()      # explicit default is the same study)
        return out


#: What a study computes for each pair, by its name: ``kind="map"`` is ``Maps()``, ``"regions"`` is ``Regions()``.
KINDS = {"map": Maps, "regions": Regions}


@dataclass(frozen=True)
class StudySpec:
    """Shapes x networks, and what to compute for each pair.

    Checked when it is made (unknown networks and kinds, a grid or starts that do not fit the Space), before any
    work or any store.

    Parameters
    ----------
    shapes : sequence
        Anything [`load_shape`][semkit.load_shape] takes, one item per shape (a single name is refused: write ``[name]``).
    networks : sequence of str or Classifier, default BUNDLED
        Network names (or [`Classifier`][semkit.Classifier] objects when run here); by default the bundled networks.
    kind : str, Maps or Regions, default "map"
        What to compute for each pair: [`Maps`][semkit.Maps] or [`Regions`][semkit.Regions] with their options, or their names ("map",
        "regions") for the defaults.
    space : Space, default Space.paper()
        The semantic Space.
    image_size : int, optional
        The render size in pixels; None: maps render once at the networks' largest input size, region searches at
        each network's own.
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        The precision the networks named compute in (see [`load_classifier`][semkit.load_classifier]); workers load
        them in it. A lower one is another network as far as results go: the store records it.

    Raises
    ------
    TypeError
        A single name for ``shapes`` or ``networks``, a ``kind`` or ``space`` of the wrong type.
    ValueError
        No shapes or networks, an unknown kind, network or precision, a Classifier of another precision, an
        ``image_size`` under 8, a grid or starts that do not fit the Space.
    """

    shapes: Sequence[Any]
    networks: Sequence[Any] = BUNDLED
    kind: "str | Maps | Regions" = "map"
    space: Space = field(default_factory=Space.paper)
    image_size: int | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", _names(self.shapes, "shapes"))
        object.__setattr__(self, "networks", _names(self.networks, "networks"))
        if isinstance(self.kind, str):
            if self.kind not in KINDS:
                raise ValueError(f"unknown study kind {self.kind!r}; choose from {tuple(KINDS)} (or pass Maps(...) / "
                                 "Regions(...) with options)")
            object.__setattr__(self, "kind", KINDS[self.kind]())
        elif not isinstance(self.kind, (Maps, Regions)):
            raise TypeError(f"kind is 'map', 'regions', Maps(...) or Regions(...), got {self.kind!r}")
        if self.space is None:
            object.__setattr__(self, "space", Space.paper())
        elif not isinstance(self.space, Space):
            raise TypeError(f"space must be a semkit.Space, got {type(self.space).__name__}")
        if self.image_size is not None:
            check_count(self.image_size, "image_size", minimum=8, what="pixels; or None for the network's own size")
        object.__setattr__(self, "precision", check_precision(self.precision))
        for network in self.networks:  # unknown names are named now, before any work (loading is cached)
            if isinstance(network, str):
                cached_classifier(network, self.precision)
            elif isinstance(network, Classifier) and network.precision != self.precision:
                raise ValueError(f"network {network.name} computes in {network.precision}, but the study's precision is "
                                 f"{self.precision!r}: pass StudySpec(precision={network.precision!r}) or the network's name")
        self.kind.settings(self.space)  # the grid or the starts, checked against the Space

    def settings(self, shapes: Sequence[Any], networks: Sequence[Any], shape_names: Sequence[str]) -> dict[str, Any]:
        """The settings a store of this study is recognised by, for the loaded shapes and networks.

        Parameters
        ----------
        shapes : sequence of Mesh
            The study's shapes, loaded.
        networks : sequence of Classifier
            The study's networks, loaded.
        shape_names : sequence of str
            How workers load each shape again (what [`load_shape`][semkit.load_shape] takes).

        Returns
        -------
        dict
            The shapes, labels, networks and their digests, the Space, the render size and the kind's settings,
            with the version of semkit's algorithms (a store made by older algorithms does not match).

        Raises
        ------
        ValueError
            If shape or network names repeat, or a shape carries no class label.
        """
        names_of_networks = [c.name for c in networks]
        for what, names in (("shape", [m.name for m in shapes]), ("network", names_of_networks)):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must be unique, got {names}")
        missing = [m.name for m in shapes if m.label is None]
        if missing:
            raise ValueError(f"shapes {missing} carry no class label: load them with a label (gallery, ShapeNet, "
                             "load_mesh(label=))")
        size = self.image_size
        if isinstance(self.kind, Maps):  # one render per view for all networks: at the largest input size
            size = size or max(c.input_size for c in networks)
        return versioned({
            "kind": self.kind.kind, "shapes": list(shape_names), "shape_names": [m.name for m in shapes],
            "labels": [int(m.label) for m in shapes], "mesh_digests": [m.fingerprint() for m in shapes],
            "networks": names_of_networks, "network_digests": [c.fingerprint() for c in networks],
            "space": self.space.to_dict(), "image_size": size, **self.kind.settings(self.space),
            # float32 studies keep the settings they always had, so their stores still match
            **({"precision": self.precision} if self.precision != "float32" else {}),
        })
