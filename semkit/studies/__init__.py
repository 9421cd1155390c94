"""Studies: shapes x networks as one spec, run here or on Dask, and networks compared with confidence.

* `.spec`: [`StudySpec`][semkit.StudySpec], what a study computes ([`Maps`][semkit.Maps] or [`Regions`][semkit.Regions] per pair);
* `.run`: [`study`][semkit.study] runs a spec (serially, or on Dask with a ``.zarr`` store);
* `.tasks`: what one task computes and writing it; `.stacking`: tasks' results as one Dataset;
* `.shortcuts`: [`map_regions`][semkit.studies.map_regions] (regions on stacked maps), [`looks`][semkit.studies.looks];
* `.compare`: [`compare_networks`][semkit.compare_networks], [`findings`][semkit.studies.findings], [`comparison_table`][semkit.studies.comparison_table], [`average`][semkit.studies.average].
* `.benchmark`: [`worst_view_accuracy`][semkit.studies.worst_view_accuracy] and [`smoothed_accuracy`][semkit.studies.smoothed_accuracy], per-shape metrics for `compare_networks(metrics=)`, and [`write_benchmark`][semkit.studies.write_benchmark] (CSV, Markdown, netCDF);
* `.claims`: [`judge_claim`][semkit.studies.judge_claim], whether "A is more accurate but less robust than B" holds;
* `.ranks`: the ranks, rank intervals and rankings' agreement (Kendall's tau) that `compare_networks` returns.
"""

from .benchmark import benchmark_table, smoothed_accuracy, worst_view_accuracy, write_benchmark
from .claims import judge_claim
from .compare import average, compare_networks, compare_searches, comparison_table, findings
from .run import study
from .shortcuts import looks, map_regions
from .spec import DEFAULT_STARTS, KINDS, Maps, Regions, StudySpec
from .stacking import stack

__all__ = [
    "DEFAULT_STARTS", "KINDS", "Maps", "Regions", "StudySpec", "average", "benchmark_table", "compare_networks", "compare_searches",
    "comparison_table", "findings", "judge_claim", "looks", "map_regions", "smoothed_accuracy", "stack", "study", "worst_view_accuracy", "write_benchmark",
]
