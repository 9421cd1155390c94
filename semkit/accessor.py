"""``ds.semkit``: a result keeps its Space and criterion wherever a user takes it.

Every semkit result (a map, a stack of maps, a region search, a study, a
robustness radius) records how it was made in its attrs. The accessor reads
them back and offers the functions that take such a result, so that

    ds.semkit.space, ds.semkit.criterion
    maps.semkit.robust_accuracy([0, 6, 12]), maps.semkit.decision_noise(3)
    regions.semkit.srvr(), regions.semkit.check(dense)
    ds.semkit.plot(ax=ax)
    maps.semkit.function(shape="vase", network="efficientnet_lite0")

work without passing the Space again. A DataArray taken from a map keeps
its Space in its coordinates (each records its range, units and
periodicity); otherwise pass ``space=`` to the functions themselves.
"""

from __future__ import annotations

from typing import Any, Sequence

import xarray as xr

from .criterion import Criterion
from .space import Space, recorded_space


class _Semkit:
    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    @property
    def space(self) -> Space:
        """The Space the result records (an error naming what to do when it records none)."""
        return recorded_space(self._obj)

    @property
    def criterion(self) -> Criterion | None:
        """The criterion the result was judged by (None when it records none: maps and the paper's regions)."""
        return Criterion.from_attrs(self._obj.attrs)

    @property
    def kind(self) -> str:
        """"regions", "map" or "other", by the variables the result holds."""
        obj = self._obj
        if isinstance(obj, xr.Dataset) and {"lower", "upper"} <= set(obj.data_vars):
            return "regions"
        if isinstance(obj, xr.Dataset) and "score" in obj.data_vars:
            return "map"
        return "other"


@xr.register_dataset_accessor("semkit")
class DatasetAccessor(_Semkit):
    """semkit's functions on a Dataset result (see the module docstring)."""

    def function(self, shape: str | None = None, network: str | None = None) -> Any:
        """The [`SemanticFunction`][semkit.SemanticFunction] that made this map (of a study: its ``shape`` and ``network``,
        by name; default the first), rendered and classified as the map was, so its views are the map's views.

        Refused when the shape or network loaded now differs from the one the map records (another mesh file or
        other weights), or the map was made by a plain function.
        """
        import json

        from .function import SemanticFunction
        from .render import Renderer
        from .scene import load_shape
        from .studies.spec import cached_classifier as load_classifier  # the networks a study already loaded

        attrs = self._obj.attrs
        settings = json.loads(attrs["settings"]) if "settings" in attrs else {}
        if "shapes" in settings:  # a study
            shapes, names, networks = settings["shapes"], settings["shape_names"], settings["networks"]
            j = names.index(shape) if shape is not None and shape in names else (0 if shape is None else -1)
            i = networks.index(network) if network is not None and network in networks else (0 if network is None else -1)
            if i < 0 or j < 0:
                raise KeyError(f"this study has shapes {names} and networks {networks}, not {shape!r} / {network!r}")
            mesh, classifier = load_shape(shapes[j]), load_classifier(networks[i], settings.get("precision", "float32"))
            digests = settings["mesh_digests"][j], settings["network_digests"][i]
            renderer = Renderer(image_size=settings["image_size"] or classifier.input_size)
        elif "renderer" in attrs and "network" in attrs and "shape" in attrs:  # one map of a SemanticFunction
            described = settings.get("function", {})
            mesh, classifier = load_shape(attrs["shape"]), load_classifier(attrs["network"], attrs.get("precision", "float32"))
            digests = described.get("mesh_digest"), described.get("network_digest")
            options = json.loads(attrs["renderer"])
            renderer = Renderer(options["backend"], options["image_size"], supersample=options["supersample"],
                                background=options["background"], color=options["color"], ambient=options["ambient"],
                                light_intensity=options["light_intensity"], fov=options["fov"],
                                materials=options["materials"])
        else:
            raise ValueError("this result records no SemanticFunction (it was made by a plain function, or is not a "
                             "map): build one with semkit.SemanticFunction(shape, network)")
        if (mesh.fingerprint(), classifier.fingerprint()) != tuple(digests):
            raise ValueError(f"{mesh.name} or {classifier.name} as loaded now differs from the one this map was made "
                             "with (another mesh file or other weights)")
        return SemanticFunction(mesh, classifier, renderer=renderer, space=self.space)

    def srvr(self) -> xr.DataArray:
        from .regions import srvr

        return srvr(self._require("regions", "srvr"), space=self.space)

    def check(self, semantic_map: xr.Dataset, *, criterion: Criterion | str | None = None) -> xr.Dataset:
        """These regions against a dense map ([`check_regions`][semkit.check_regions]), under ``criterion`` (default:
        the regions' own)."""
        from .regions import check_regions

        return check_regions(self._require("regions", "check"), semantic_map, criterion=criterion, space=self.space)

    def robust_accuracy(self, radius: float | Sequence[float], *,
                        criterion: Criterion | str | Sequence[Criterion | str] | None = None) -> xr.DataArray:
        """[`robust_accuracy`][semkit.robust_accuracy] of this map, exact on its grid, under ``criterion`` (default: the
        map's own, else top-1; a list of criteria adds a ``criterion`` dim)."""
        from .trust import robust_accuracy

        return robust_accuracy(self._require("map", "robust_accuracy"), radius, space=self.space,
                               criterion=criterion if criterion is not None else self.criterion)

    def decision_noise(self, radius: float | Sequence[float], *,
                       criterion: Criterion | str | None = None) -> xr.DataArray:
        """[`decision_noise`][semkit.decision_noise] of this map, under ``criterion`` (default: the map's own, else top-1)."""
        from .trust import decision_noise

        return decision_noise(self._require("map", "decision_noise"), radius, space=self.space,
                              criterion=criterion if criterion is not None else self.criterion)

    def plot(self, semantic_map: xr.Dataset | None = None, *, ax: Any = None) -> Any:
        """A map as a heatmap (a curve in 1-D), regions as boxes (over ``semantic_map`` when given); returns the
        axes. For more options call [`semkit.plot`][semkit.plot] itself."""
        from . import plot

        if self.kind == "regions":
            return plot.regions(self._obj, semantic_map, ax=ax)
        if semantic_map is not None:
            raise ValueError("semantic_map= is for regions (boxes drawn over their map); this Dataset is a map")
        if self.kind == "map":
            return plot.curve(self._obj, ax=ax) if self.space.n == 1 else plot.heatmap(self._obj, ax=ax)
        raise ValueError("this Dataset is neither a map (score) nor regions (lower, upper): plot its variables directly")

    def _require(self, kind: str, what: str) -> xr.Dataset:
        if self.kind != kind:
            raise ValueError(f"{what} takes {'a region search (lower, upper)' if kind == 'regions' else 'a map (score)'}, "
                             f"and this Dataset is {'a ' + self.kind if self.kind != 'other' else 'neither'}")
        return self._obj


@xr.register_dataarray_accessor("semkit")
class DataArrayAccessor(_Semkit):
    """The Space and criterion of a DataArray result (robust accuracy, SRVR, decision noise)."""
