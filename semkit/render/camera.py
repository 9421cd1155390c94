"""Camera and light geometry of the paper (the Neural Mesh Renderer's conventions).

The camera sits at distance d from the origin, looks at it with up +y, and
its eye for azimuth az and elevation el (degrees) is
``(d cos(el) sin(az), d sin(el), -d cos(el) cos(az))``. Camera axes follow
NMR's ``look_at``: z from the eye to the origin, x = up x z, y = z x x; image
columns grow with x and rows grow with -y. The half field of view is 30 deg.
Roll (not in the paper) turns the camera about z: roll r turns the image
content counter-clockwise by r degrees, so roll 90 gives the roll-0 image
rotated by a quarter turn (``torch.rot90(image, 1, dims=(-2, -1))``).

Everything here is torch float64 so that a differentiable backend gets
gradients with respect to the semantic parameters, and so that elevation
90 exactly stays on the same side as 89.999 (float32 cos(90 deg) < 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch

from ..space import Space

#: Values of the rendering parameters when neither a Space nor the caller sets them.
DEFAULTS: dict[str, float] = {
    "azimuth": 0.0,
    "elevation": 0.0,
    "distance": 2.732,
    "light_azimuth": 0.0,
    "light_elevation": 90.0,  # light direction (0, 1, 0): faces whose normal points up are brightest
    "roll": 0.0,
    "light_intensity": 0.5,  # the directional light; 0 leaves the ambient light only
    "ambient": 0.5,
}


def direction(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Unit vectors [B, 3] for angles in degrees, in the paper's eye convention."""
    az, el = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    return torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), -torch.cos(el) * torch.cos(az)], dim=-1)


def look_at_axes(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Camera axes [B, 3 (x, y, z), 3] of NMR's look_at toward the origin with up +y.

    In closed form rather than by normalizing cross products, which lose
    their length near the poles: z = -eye/|eye|, x = up x z normalized
    = sign(cos el) (cos az, 0, sin az), y = z x x. Exact at elevation 90.
    """
    az, el = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    z = -direction(azimuth, elevation)
    side = torch.where(torch.cos(el) < 0, -1.0, 1.0).to(az.dtype)
    x = side[..., None] * torch.stack([torch.cos(az), torch.zeros_like(az), torch.sin(az)], dim=-1)
    y = torch.linalg.cross(z, x, dim=-1)
    return torch.stack([x, y, z], dim=-2)


def rolled(axes: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Camera axes [B, 3, 3] turned about their z by ``roll`` degrees [B].

    x' = cos(r) x - sin(r) y and y' = sin(r) x + cos(r) y: the image content
    turns counter-clockwise by r. Roll 0 returns the axes unchanged.
    """
    r = torch.deg2rad(roll)[..., None]
    c, s = torch.cos(r), torch.sin(r)
    x, y, z = axes[..., 0, :], axes[..., 1, :], axes[..., 2, :]
    return torch.stack([c * x - s * y, s * x + c * y, z], dim=-2)


@dataclass
class Views:
    """A batch of B views: one value per parameter per view, float64 tensors [B].

    Build it with `from_inputs`, which validates and broadcasts; the
    constructor takes the tensors as they are.

    Parameters
    ----------
    azimuth, elevation : torch.Tensor [B]
        The camera's direction from the origin, in degrees (the paper's eye convention).
    distance : torch.Tensor [B]
        The camera's distance from the origin, in scene units.
    light_azimuth, light_elevation : torch.Tensor [B]
        The directional light's direction, in degrees.
    roll : torch.Tensor [B]
        The camera's turn about its viewing axis, in degrees (counter-clockwise image content).
    light_intensity : torch.Tensor [B]
        The directional light's strength in the shading ``ambient + light_intensity * max(0, n.l)``.
    ambient : torch.Tensor [B]
        The ambient light's strength in that shading.
    """

    azimuth: torch.Tensor
    elevation: torch.Tensor
    distance: torch.Tensor
    light_azimuth: torch.Tensor
    light_elevation: torch.Tensor
    roll: torch.Tensor
    light_intensity: torch.Tensor
    ambient: torch.Tensor

    def __len__(self) -> int:
        return int(self.azimuth.shape[0])

    @property
    def eye(self) -> torch.Tensor:
        """Camera positions [B, 3]."""
        return self.distance[:, None] * direction(self.azimuth, self.elevation)

    @property
    def axes(self) -> torch.Tensor:
        """Camera axes [B, 3, 3] (rows x, y, z in world coordinates), rolled."""
        return rolled(look_at_axes(self.azimuth, self.elevation), self.roll)

    @property
    def light(self) -> torch.Tensor:
        """Unit light directions [B, 3]."""
        return direction(self.light_azimuth, self.light_elevation)

    def detach(self) -> "Views":
        """The same views with every tensor detached from its autograd graph."""
        return Views(*(getattr(self, f.name).detach() for f in fields(self)))

    @classmethod
    def from_inputs(
        cls,
        points: Any = None,
        space: Space | None = None,
        named: Mapping[str, Any] | None = None,
        defaults: Mapping[str, float] | None = None,
    ) -> "Views":
        """Views from points of a Space and/or named values (scalars broadcast).

        Values given by name override the Space's fixed values, which override
        ``defaults`` (a renderer's own), which override `DEFAULTS`.
        Tensors that require grad keep their graph.

        Parameters
        ----------
        points : array_like or torch.Tensor [B, n], optional
            Points of ``space``; a tensor is taken as it is (no validation, its graph kept).
        space : Space, optional
            The Space of ``points`` (default [`Space.paper`][semkit.Space.paper]); without points, only its fixed values count.
        named : mapping of str to float or array_like, optional
            Rendering parameters by name.
        defaults : mapping of str to float, optional
            A renderer's own defaults, under everything else.

        Raises
        ------
        ValueError
            Unknown parameter names, lengths that do not broadcast, NaN or infinite values, a distance that is not
            positive, or a negative light.
        """
        named = dict(named or {})
        unknown = (set(named) | set(defaults or {})) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown rendering parameters {sorted(unknown)}; known: {list(DEFAULTS)}")
        values: dict[str, Any] = {**DEFAULTS, **(defaults or {})}
        if points is not None:
            space = space or Space.paper()
            unknown = set(space.names) - set(DEFAULTS)
            if unknown:
                raise ValueError(
                    f"the renderer has no parameters {sorted(unknown)}; a Space for rendering may use {list(DEFAULTS)}"
                )
            if isinstance(points, torch.Tensor):
                values.update(space.fixed)
                values.update({name: points[..., i] for i, name in enumerate(space.names)})
            else:
                values.update(space.named(space.points(points)))
        elif space is not None:
            values.update(space.fixed)
        values.update(named)
        tensors = {k: _as_tensor(v) for k, v in values.items()}
        size = max(t.numel() for t in tensors.values())
        for k, t in tensors.items():
            if t.numel() not in (1, size):
                raise ValueError(f"{k} has {t.numel()} values but other parameters have {size}")
            if not torch.isfinite(t).all():
                raise ValueError(f"{k} contains NaN or infinite values")
        distance = tensors["distance"]
        if (distance <= 0).any():
            raise ValueError("distance must be positive")
        for name in ("light_intensity", "ambient"):
            if (tensors[name] < 0).any():
                raise ValueError(f"{name} must be at least 0, got {tensors[name].min().item():g}")
        return cls(**{k: t.reshape(-1).expand(size) if t.numel() == 1 else t.reshape(-1) for k, t in tensors.items()})


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))
