"""Rendering a mesh under a batch of semantic parameters.

One interface, three backends that give the same image for the same
parameters (the paper's camera, normalization and two-sided flat shading):

* ``embree``: ray casting with trimesh's embreex binding, the CPU default.
* ``gl``: OpenGL rasterization through a headless EGL context (optional,
  ``pip install 'semkit[gl]'``): on a GPU with NVIDIA's driver, on the CPU
  with Mesa's llvmpipe. It shares embree's shading code.
* ``pytorch3d``: differentiable rasterization (optional, for GPUs), so
  gradients of scores with respect to the parameters come from autograd.

The look is the paper's (a white object on black) unless asked otherwise:
``materials=True`` draws the mesh's own colours and textures, and
``background`` takes a grey level, an RGB triple or an image.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .camera import Views
from .mesh import Mesh
from .space import Space

BACKENDS = ("auto", "embree", "gl", "pytorch3d")


@dataclass(frozen=True)
class RenderSettings:
    """What a render looks like; recorded in results so they say how they were made."""

    image_size: int = 224
    supersample: int = 2
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.5
    light_intensity: float = 0.5
    fov: float = 60.0
    materials: bool = False
    #: a background image [H, W, 3] in [0, 1] (any size; resized to image_size), replacing ``background``
    background_image: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: where the background image came from (a file, or "array")
    background_source: str | None = None

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
        for name in ("ambient", "light_intensity"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    def background_array(self) -> np.ndarray:
        """The background at the output size, [3, image_size, image_size] float32.

        An image is resized (bilinear, antialiased; stretched if it is not
        square), a colour fills the whole frame.
        """
        size = self.image_size
        if self.background_image is None:
            return np.broadcast_to(np.asarray(self.background, np.float32)[:, None, None], (3, size, size)).copy()
        image = torch.from_numpy(np.ascontiguousarray(self.background_image.transpose(2, 0, 1)))[None]
        resized = torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return resized[0].clamp(0.0, 1.0).numpy()

    def describe(self) -> dict[str, Any]:
        """The settings as plain values; a background image by its source and content hash."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "background_image"}
        if self.background_image is not None:
            digest = hashlib.sha256(self.background_image.tobytes()).hexdigest()[:16]
            out["background_image"] = f"{list(self.background_image.shape)} sha256:{digest}"
        return out


def _background(value: Any) -> tuple[tuple[float, float, float], np.ndarray | None, str | None]:
    """(colour, image, source) of a ``background=`` argument; a clear error for anything else."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"background image not found: {path}")
        from PIL import Image

        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read the background image {path}: {e}") from e
        return (0.0, 0.0, 0.0), array, str(path)
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
    if array.ndim == 0 or array.shape == (3,):
        return _rgb(array.tolist()), None, None
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise ValueError(
            "background must be a grey level, an RGB triple, an image array [H, W, 3] in [0, 1] or an image file; "
            f"got an array of shape {list(array.shape)}"
        )
    if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
        raise ValueError("a background image must hold finite values in [0, 1] (divide 8-bit images by 255)")
    return (0.0, 0.0, 0.0), array, "array"


def _rgb(value: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    if len(value) != 3:
        raise ValueError(f"a colour is a grey level or three values in [0, 1], got {value}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


class Renderer:
    """Render meshes as the paper does, for whole batches of views.

    >>> renderer = Renderer(image_size=64)
    >>> images = renderer.render(mesh, azimuth=[0, 90, 180], elevation=30)  # doctest: +SKIP
    >>> images.shape  # doctest: +SKIP
    torch.Size([3, 3, 64, 64])

    ``backend="auto"`` picks, of :meth:`backends`: pytorch3d on a CUDA GPU
    when it is installed (it has gradients); else gl when a CUDA GPU is
    present and OpenGL runs on a GPU (not on Mesa's CPU rasterizer); else
    embree, which on the CPU renders faster than gl on llvmpipe (measured:
    README, Renderers). ``supersample=2`` anti-aliases like the paper's
    renderer (render at twice the size, average 2x2 blocks). The embree and
    gl backends take ``threads``: views traced (embree) or shaded (gl) in
    parallel (default: one per usable core).

    A pixel's colour is ``color * (ambient + light_intensity * max(0, n.l))``
    (two-sided, flat, no gamma), or with ``materials=True``
    ``Kd * texture(uv) * (ambient + light_intensity * max(0, n.l))`` from
    the mesh's :class:`~semkit.mesh.Materials` (a mesh without any is drawn
    in ``color``); textures are sampled bilinearly with wrap-around.
    ``ambient`` and ``light_intensity`` here are the defaults of the
    per-view parameters of the same names. ``background`` is a grey level,
    an RGB triple, an image array [H, W, 3] in [0, 1] or an image file,
    resized to the output size, shown wherever no object is.
    """

    def __init__(
        self,
        backend: str = "auto",
        image_size: int = 224,
        *,
        supersample: int = 2,
        background: float | Sequence[float] | np.ndarray | str | os.PathLike = 0.0,
        color: float | Sequence[float] = 1.0,
        ambient: float = 0.5,
        light_intensity: float = 0.5,
        fov: float = 60.0,
        materials: bool = False,
        device: str | torch.device | None = None,
        **backend_options: Any,
    ) -> None:
        rgb, image, source = _background(background)
        self.settings = RenderSettings(
            image_size, supersample, rgb, _rgb(color), float(ambient), float(light_intensity), float(fov),
            bool(materials), image, source,
        )
        self.backend_name = _resolve_backend(backend)
        if self.backend_name in ("embree", "gl"):
            unknown = sorted(set(backend_options) - {"threads"})
            if unknown:
                raise TypeError(f"the {self.backend_name} backend takes only the option threads, not {unknown}")
            if self.backend_name == "embree":
                from ._embree import EmbreeBackend as Backend
            else:
                from ._gl import GLBackend as Backend
            self._backend = Backend(self.settings, **backend_options)
        else:
            from ._pytorch3d import Pytorch3DBackend

            self._backend = Pytorch3DBackend(self.settings, device=device, **backend_options)

    @staticmethod
    def backends() -> tuple[str, ...]:
        """The backends that can render here (installed, with their drivers), in the order ``auto`` prefers them.

        embree always; gl when moderngl is installed and an EGL driver
        answers (Mesa on a CPU, NVIDIA's on a GPU); pytorch3d when it is
        installed.
        """
        usable = ["embree"]
        if gl_unavailable_reason() is None:
            usable.append("gl")
        if pytorch3d_available():
            usable.append("pytorch3d")
        return tuple(sorted(usable, key=lambda name: name != _auto_backend()))

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
        return {"backend": self.backend_name, **self.settings.describe()}

    def __repr__(self) -> str:
        s = self.settings
        look = ", materials=True" if s.materials else ""
        return f"Renderer(backend={self.backend_name!r}, image_size={s.image_size}, supersample={s.supersample}{look})"

    def render(self, mesh: Mesh, points: Any = None, space: Space | None = None, **params: Any) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] for a batch of views of ``mesh``.

        Give the views as ``points`` [B, n] of a ``space`` (default
        ``Space.paper()``), and/or as named values: ``azimuth``,
        ``elevation`` (degrees), ``distance`` (camera distance, default
        2.732), ``light_azimuth``, ``light_elevation`` (the light direction,
        default straight up), ``roll`` (degrees about the viewing axis; 90
        turns the image content a quarter turn counter-clockwise),
        ``light_intensity`` and ``ambient`` (defaults: the renderer's).
        Scalars broadcast.
        """
        if not isinstance(mesh, Mesh):
            raise TypeError(f"render() needs a semkit.Mesh (see semkit.load_mesh), got {type(mesh).__name__}")
        s = self.settings
        views = Views.from_inputs(points, space, params, {"ambient": s.ambient, "light_intensity": s.light_intensity})
        return self._backend.render(mesh, views)


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown renderer backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return _auto_backend()
    if backend == "pytorch3d" and not pytorch3d_available():
        raise ImportError(
            "the pytorch3d backend needs pytorch3d, which has no PyPI wheels for Linux: install it from conda "
            "(environment.yml: `conda env create -f environment.yml`) or build it from source; "
            "the embree backend works without it"
        )
    if backend == "gl" and gl_unavailable_reason() is not None:
        raise ImportError(f"{gl_unavailable_reason()}; the embree backend works without it")
    return backend


def _auto_backend() -> str:
    """The rule of ``backend="auto"`` (see :class:`Renderer`)."""
    if not torch.cuda.is_available():
        return "embree"
    if pytorch3d_available():
        return "pytorch3d"
    from ._gl import SOFTWARE_RENDERERS

    driver = gl_renderer()
    return "gl" if driver is not None and not driver.lower().startswith(SOFTWARE_RENDERERS) else "embree"


def gl_unavailable_reason() -> str | None:
    """Why the gl backend cannot run here (with the fix), or None when it can."""
    from ._gl import unavailable_reason

    return unavailable_reason()


def gl_renderer() -> str | None:
    """The OpenGL driver the gl backend draws with (its GL_RENDERER, e.g. Mesa's llvmpipe on a CPU); None if unusable."""
    if gl_unavailable_reason() is not None:
        return None
    from ._gl import context

    return context().renderer


def pytorch3d_available() -> bool:
    """Whether pytorch3d (with its compiled extension) can be imported."""
    try:
        import pytorch3d.renderer  # noqa: F401
    except Exception:
        return False
    return True
