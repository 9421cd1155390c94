"""Plots of semantic maps, regions and comparisons (matplotlib), labelled with names and units.

One rule: a function that draws on one set of axes takes ``ax=`` (None: a
new figure) and returns the axes (`.axes`: [`curve`][semkit.plot.curve],
[`polar`][semkit.plot.polar], [`heatmap`][semkit.plot.heatmap], [`outline`][semkit.plot.outline], [`render_strip`][semkit.plot.render_strip],
[`robust_accuracy`][semkit.robust_accuracy], [`decision_noise`][semkit.decision_noise]; `.boxes`: [`regions`][semkit.regions],
[`traces`][semkit.plot.traces], [`loss_traces`][semkit.plot.loss_traces]; `.certified`: [`certified_accuracy`][semkit.certified_accuracy],
[`sensitivity`][semkit.sensitivity]; `.ranking`: [`ranks`][semkit.plot.ranks]); a function that makes a
whole figure of several panels says so in its name and returns the figure
(`.figures`: [`search_figure`][semkit.plot.search_figure], [`facets_figure`][semkit.plot.facets_figure],
[`renders_figure`][semkit.plot.renders_figure], [`looks_figure`][semkit.plot.looks_figure], [`comparison_figure`][semkit.plot.comparison_figure]).

Averaged maps are plotted the same way: ``heatmap(maps.mean("shape"))``.
"""

from .axes import CMAP, curve, decision_noise, heatmap, outline, polar, render_strip, robust_accuracy
from .boxes import loss_traces, regions, traces
from .certified import certified_accuracy, sensitivity
from .figures import comparison_figure, facets_figure, looks_figure, renders_figure, search_figure
from .ranking import ranks

__all__ = [
    "CMAP", "certified_accuracy", "comparison_figure", "curve", "decision_noise", "facets_figure", "heatmap",
    "looks_figure", "loss_traces", "outline", "polar", "ranks", "regions", "render_strip", "renders_figure", "robust_accuracy",
    "search_figure", "sensitivity", "traces",
]

