"""What a study computes, as one value: :class:`StudySpec`.

A spec names the shapes, the networks and the kind of result (dense maps
or region searches) with their settings; :func:`~semkit.study` runs it
here or on Dask. Every spec is checked when it is made, before any work,
and turns into the settings a study's store is recognised by.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Sequence

from ..criterion import Criterion
from ..maps import resolve_tolerance
from ..regions import DEFAULT_STEP_RULE, STEP_RULES, method
from ..space import Space
from ..store import versioned

#: The kinds of study: dense maps, or region searches from starts.
KINDS = ("map", "regions")
#: The starts of a region study unless given (azimuth, elevation in degrees).
DEFAULT_STARTS = ((130, 30), (50, 20), (200, 15), (310, 50))


@dataclass(frozen=True)
class StudySpec:
    """Shapes x networks, and what to compute for each pair.

    ``shapes``: anything :func:`~semkit.load_shape` takes; ``networks``:
    names (or :class:`~semkit.Classifier` objects when run here).
    ``kind="map"``: a map over the grid of ``space`` with spacing ``step``
    (``adaptive``/``tolerance``: adaptive maps, see
    :func:`~semkit.semantic_map`), each view rendered once for every
    network at ``image_size`` (None: the networks' largest input size).
    ``kind="regions"``: :func:`~semkit.find_regions` from ``starts`` with
    ``algorithms`` for ``iterations`` steps under ``step_rule``, at
    ``image_size`` or each network's own; ``criterion``: what verified
    boxes are grown under.
    """

    shapes: Sequence[Any]
    networks: Sequence[Any]
    kind: str = "map"
    _: KW_ONLY
    space: Space = field(default_factory=Space.paper)
    step: Any = None
    starts: Any = DEFAULT_STARTS
    algorithms: Sequence[str] = ("naive", "oir_b")
    iterations: int = 600
    step_rule: str = DEFAULT_STEP_RULE
    image_size: int | None = None
    adaptive: bool = False
    tolerance: float | None = None
    criterion: Criterion | str | None = None

    def __post_init__(self) -> None:
        if self.space is None:
            object.__setattr__(self, "space", Space.paper())
        if self.kind not in KINDS:
            raise ValueError(f"unknown study kind {self.kind!r}; choose from {KINDS}")
        if not len(self.shapes) or not len(self.networks):
            raise ValueError("a study needs at least one shape and one network")
        if self.tolerance is not None and not self.adaptive:
            raise ValueError("tolerance= is for adaptive maps: pass adaptive=True as well")
        if self.kind == "map":
            if self.criterion is not None:
                raise ValueError("criterion= is for region studies with verified boxes; maps hold scores and top-1 "
                                 "answers, judge them afterwards (compare_networks(..., criterion=))")
            return
        if self.adaptive:
            raise ValueError("adaptive= is for map studies (kind='map')")
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {self.step_rule!r}; choose from {STEP_RULES}")
        for a in self.algorithms:
            method(a)  # unknown names are named here, before any work

    def settings(self, meshes: Sequence[Any], classifiers: Sequence[Any], shape_names: Sequence[str]) -> dict[str, Any]:
        """The settings a store of this study is recognised by, for the loaded ``meshes`` and ``classifiers``
        (``shape_names``: how workers load each shape again)."""
        networks = [c.name for c in classifiers]
        for what, names in (("shape", [m.name for m in meshes]), ("network", networks)):
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must be unique, got {names}")
        missing = [m.name for m in meshes if m.label is None]
        if missing:
            raise ValueError(f"shapes {missing} carry no ImageNet label: load them with a label (gallery, ShapeNet, "
                             "load_mesh(label=))")
        space = self.space
        settings: dict[str, Any] = {
            "kind": self.kind, "shapes": list(shape_names), "shape_names": [m.name for m in meshes],
            "labels": [int(m.label) for m in meshes], "mesh_digests": [m.fingerprint() for m in meshes],
            "networks": networks, "network_digests": [c.fingerprint() for c in classifiers], "space": space.to_dict(),
            "image_size": self.image_size,
        }
        if self.kind == "map":  # one render per view for all networks: at the largest input size unless image_size is given
            settings["image_size"] = self.image_size or max(c.input_size for c in classifiers)
            settings["grid"] = {k: [float(x) for x in v] for k, v in space.grid(self.step).items()}
            if self.adaptive:
                settings["adaptive"] = {"tolerance": resolve_tolerance(self.tolerance)}
        else:
            settings.update(starts=space.points(self.starts).tolist(), algorithms=[str(a) for a in self.algorithms],
                            iterations=int(self.iterations), step_rule=self.step_rule)
            if self.criterion is not None:  # judges the verified boxes; stored, so a store grown under another is refused
                settings["criterion"] = Criterion.resolve(self.criterion).spec()
        return versioned(settings)
