"""Rendering: a mesh under a batch of semantic parameters, by one of several backends with one interface.

* `.camera`: the paper's camera ([`Views`][semkit.render.Views] of a batch of points);
* `.settings`: [`RenderSettings`][semkit.render.RenderSettings], what a render looks like;
* `.shading`: the flat two-sided shading embree and gl share;
* `.embree`, `.gl`, `.pytorch3d`: the backends (`.edges`: pytorch3d's edge gradients);
* `.renderer`: [`Renderer`][semkit.Renderer], which picks a backend and owns it.
"""

from .camera import DEFAULTS, Views
from .renderer import BACKENDS, Renderer, gl_renderer, gl_unavailable_reason, pytorch3d_available
from .settings import RenderSettings

__all__ = [
    "BACKENDS", "DEFAULTS", "RenderSettings", "Renderer", "Views", "gl_renderer", "gl_unavailable_reason",
    "pytorch3d_available",
]
