"""Plots of semantic maps, regions and comparisons (matplotlib), labelled with names and units.

One rule: a function that draws on one set of axes takes ``ax=`` (None: a
new figure) and returns the axes (:mod:`.axes`: :func:`curve`,
:func:`polar`, :func:`heatmap`, :func:`outline`, :func:`render_strip`,
:func:`robust_accuracy`, :func:`decision_noise`; :mod:`.boxes`: :func:`regions`,
:func:`traces`, :func:`loss_traces`; :mod:`.certified`: :func:`certified_accuracy`,
:func:`sensitivity`); a function that makes a
whole figure of several panels says so in its name and returns the figure
(:mod:`.figures`: :func:`search_figure`, :func:`facets_figure`,
:func:`renders_figure`, :func:`looks_figure`, :func:`comparison_figure`).

Averaged maps are plotted the same way: ``heatmap(maps.mean("shape"))``.
"""

from .axes import CMAP, curve, decision_noise, heatmap, outline, polar, render_strip, robust_accuracy
from .boxes import loss_traces, regions, traces
from .certified import certified_accuracy, sensitivity
from .figures import comparison_figure, facets_figure, looks_figure, renders_figure, search_figure

__all__ = [
    "CMAP", "certified_accuracy", "comparison_figure", "curve", "decision_noise", "facets_figure", "heatmap",
    "looks_figure", "loss_traces", "outline", "polar", "regions", "render_strip", "renders_figure", "robust_accuracy",
    "search_figure", "sensitivity", "traces",
]

