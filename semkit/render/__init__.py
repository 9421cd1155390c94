"""Rendering: a mesh under a batch of semantic parameters, by one of several backends with one interface.

* :mod:`.camera`: the paper's camera (:class:`Views` of a batch of points);
* :mod:`.settings`: :class:`RenderSettings`, what a render looks like;
* :mod:`.shading`: the flat two-sided shading embree and gl share;
* :mod:`.embree`, :mod:`.gl`, :mod:`.pytorch3d`: the backends (:mod:`.edges`: pytorch3d's edge gradients);
* :mod:`.renderer`: :class:`Renderer`, which picks a backend and owns it.
"""

from .camera import DEFAULTS, Views
from .renderer import BACKENDS, Renderer, gl_renderer, gl_unavailable_reason, pytorch3d_available
from .settings import RenderSettings

__all__ = [
    "BACKENDS", "DEFAULTS", "RenderSettings", "Renderer", "Views", "gl_renderer", "gl_unavailable_reason",
    "pytorch3d_available",
]
