"""Stacking per-task results (one shape, one network each) into one Dataset with ``network`` and ``shape`` dims."""


from __future__ import annotations

from typing import Sequence

import xarray as xr

#: Per-task attrs that become coordinates or are dropped when results are stacked.
PER_TASK = ("label", "label_name", "network", "shape", "fingerprint", "settings", "created", "function")


def stack(results: Sequence[Sequence[xr.Dataset]], networks: Sequence[str], shapes: Sequence[str]) -> xr.Dataset:
    """Results of [`semantic_map`][semkit.semantic_map] or [`find_regions`][semkit.find_regions], one per (network, shape), as one Dataset.

    Labels become coordinates along ``shape`` (``label``, ``label_name``); the attrs the results share are
    kept; traces of different lengths are padded with NaN.

    Parameters
    ----------
    results : sequence of sequence of Dataset
        The results, one row per network, one column per shape.
    networks : sequence of str
        The networks' names, in the rows' order.
    shapes : sequence of str
        The shapes' names, in the columns' order.

    Returns
    -------
    Dataset
        The results with ``network`` and ``shape`` dims.
    """
    first = results[0][0]
    per_shape = [row for row in zip(*results)]  # [shape][network]
    label = [r[0].attrs.get("label", -1) for r in per_shape]
    label_name = [r[0].attrs.get("label_name", "") for r in per_shape]
    stacked = xr.concat(
        [xr.concat([r.drop_attrs() for r in row], dim="shape", join="outer") for row in results],
        dim="network", join="outer", combine_attrs="drop",
    )
    stacked = stacked.assign_coords(network=("network", list(networks)), shape=("shape", list(shapes)),
                                    label=("shape", label), label_name=("shape", label_name))
    for name, coord in first.coords.items():  # concat dropped the coordinates' attrs
        stacked[name].attrs = dict(coord.attrs)
    for name, var in first.data_vars.items():  # attrs that name one shape's class name the true class in a stack
        attrs = dict(var.attrs)
        if len(set(label_name)) > 1 and "long_name" in attrs:
            attrs["long_name"] = attrs["long_name"].replace(str(label_name[0]), "true class")
        stacked[name].attrs = attrs
    stacked.attrs = {k: v for k, v in first.attrs.items() if k not in PER_TASK}
    return stacked
