"""Rendering a mesh under a batch of semantic parameters.

One interface, two backends that give the same image for the same
parameters (the paper's camera, normalization and two-sided flat shading):

* ``embree``: ray casting with trimesh's embreex binding, the CPU default.
* ``pytorch3d``: differentiable rasterization (optional, for GPUs), so
  gradients of scores with respect to the parameters come from autograd.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import torch

from .camera import Views
from .mesh import Mesh
from .space import Space

BACKENDS = ("auto", "embree", "pytorch3d")


@dataclass(frozen=True)
class RenderSettings:
    """What a render looks like; recorded in results so they say how they were made."""

    image_size: int = 224
    supersample: int = 2
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.5
    directional: float = 0.5
    fov: float = 60.0

    def __post_init__(self) -> None:
        if not (isinstance(self.image_size, int) and 8 <= self.image_size <= 4096):
            raise ValueError(f"image_size must be an integer in [8, 4096], got {self.image_size!r}")
        if not (isinstance(self.supersample, int) and 1 <= self.supersample <= 8):
            raise ValueError(f"supersample must be an integer in [1, 8], got {self.supersample!r}")
        if not 0 < self.fov < 180:
            raise ValueError(f"fov (full field of view, degrees) must be in (0, 180), got {self.fov}")
        for name in ("background", "color"):
            value = getattr(self, name)
            if len(value) != 3 or not all(0.0 <= c <= 1.0 for c in value):
                raise ValueError(f"{name} must be three values in [0, 1], got {value}")


def _rgb(value: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    return tuple(float(v) for v in value)  # type: ignore[return-value]


class Renderer:
    """Render meshes as the paper does, for whole batches of views.

    >>> renderer = Renderer(image_size=64)
    >>> images = renderer.render(mesh, azimuth=[0, 90, 180], elevation=30)  # doctest: +SKIP
    >>> images.shape  # doctest: +SKIP
    torch.Size([3, 3, 64, 64])

    ``backend="auto"`` picks pytorch3d on a GPU when it is installed, else
    embree. ``supersample=2`` anti-aliases like the paper's renderer (render
    at twice the size, average 2x2 blocks). The embree backend renders the
    views of a batch in ``threads`` threads (default: one per usable core).
    """

    def __init__(
        self,
        backend: str = "auto",
        image_size: int = 224,
        *,
        supersample: int = 2,
        background: float | Sequence[float] = 0.0,
        color: float | Sequence[float] = 1.0,
        ambient: float = 0.5,
        directional: float = 0.5,
        fov: float = 60.0,
        device: str | torch.device | None = None,
        **backend_options: Any,
    ) -> None:
        self.settings = RenderSettings(
            image_size, supersample, _rgb(background), _rgb(color), float(ambient), float(directional), float(fov)
        )
        self.backend_name = _resolve_backend(backend)
        if self.backend_name == "embree":
            unknown = sorted(set(backend_options) - {"threads"})
            if unknown:
                raise TypeError(f"the embree backend takes only the option threads, not {unknown}")
            from ._embree import EmbreeBackend

            self._backend = EmbreeBackend(self.settings, **backend_options)
        else:
            from ._pytorch3d import Pytorch3DBackend

            self._backend = Pytorch3DBackend(self.settings, device=device, **backend_options)

    @property
    def differentiable(self) -> bool:
        """Whether images carry autograd gradients with respect to the parameters."""
        return self._backend.differentiable

    @property
    def image_size(self) -> int:
        return self.settings.image_size

    def resized(self, image_size: int) -> "Renderer":
        """The same renderer (backend and look) at another image size."""
        other = object.__new__(Renderer)
        other.settings = replace(self.settings, image_size=image_size)
        other.backend_name = self.backend_name
        other._backend = type(self._backend)(other.settings, **self._backend.options())
        return other

    def describe(self) -> dict[str, Any]:
        """Backend and settings, as plain values (for dataset attrs)."""
        return {"backend": self.backend_name, **asdict(self.settings)}

    def __repr__(self) -> str:
        s = self.settings
        return f"Renderer(backend={self.backend_name!r}, image_size={s.image_size}, supersample={s.supersample})"

    def render(self, mesh: Mesh, points: Any = None, space: Space | None = None, **params: Any) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] for a batch of views of ``mesh``.

        Give the views as ``points`` [B, n] of a ``space`` (default
        ``Space.paper()``), and/or as named values: ``azimuth``,
        ``elevation`` (degrees), ``distance`` (camera distance, default
        2.732), ``light_azimuth``, ``light_elevation`` (the light direction,
        default straight up). Scalars broadcast.
        """
        if not isinstance(mesh, Mesh):
            raise TypeError(f"render() needs a semkit.Mesh (see semkit.load_mesh), got {type(mesh).__name__}")
        views = Views.from_inputs(points, space, params)
        return self._backend.render(mesh, views)


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown renderer backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "pytorch3d" if torch.cuda.is_available() and pytorch3d_available() else "embree"
    if backend == "pytorch3d" and not pytorch3d_available():
        raise ImportError(
            "the pytorch3d backend needs pytorch3d, which has no PyPI wheels for Linux: install it from conda "
            "(environment.yml: `conda env create -f environment.yml`) or build it from source; "
            "the embree backend works without it"
        )
    return backend


def pytorch3d_available() -> bool:
    """Whether pytorch3d (with its compiled extension) can be imported."""
    try:
        import pytorch3d.renderer  # noqa: F401
    except Exception:
        return False
    return True
