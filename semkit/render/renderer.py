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

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..scene import Mesh
from ..space import Space
from ..validation import check_probability, check_scalar
from .camera import Views
from .settings import RenderSettings, as_rgb, parse_background

BACKENDS = ("auto", "embree", "gl", "pytorch3d")


class Renderer:
    """Render meshes as the paper does, for whole batches of views.

    A pixel's colour is ``color * (ambient + light_intensity * max(0, n.l))``
    (two-sided, flat, no gamma), or with ``materials=True``
    ``Kd * texture(uv) * (ambient + light_intensity * max(0, n.l))`` from
    the mesh's [`Materials`][semkit.scene.Materials] (a mesh without any is drawn
    in ``color``); textures are sampled bilinearly with wrap-around.
    pytorch3d renders on the current CUDA device (``torch.cuda.set_device``),
    else on the CPU; gl returns its images there too when OpenGL draws on a GPU.

    Parameters
    ----------
    backend : {"auto", "embree", "gl", "pytorch3d"}, default "auto"
        "auto" picks, of `backends`: gl when a CUDA GPU is present and OpenGL (EGL) draws on a GPU (not on Mesa's
        CPU rasterizer); else pytorch3d on a CUDA GPU when it is installed; else embree, which on the CPU renders
        faster than gl on llvmpipe (measured: README, Renderers). A GPU machine that renders on its CPU says why
        once (a warning naming the packages).
    image_size : int, default 224
        Width and height of the images, in pixels.
    supersample : int, default 2
        Render at this many times the size and average blocks: 2 anti-aliases like the paper's renderer.
    background : float, sequence of float, numpy.ndarray, str or path, default 0.0
        A grey level, an RGB triple, an image array [H, W, 3] in [0, 1] or an image file (resized to the output
        size), shown wherever no object is.
    color : float or sequence of float, default 1.0
        The object's grey level or RGB colour (without materials).
    ambient, light_intensity : float, default 0.5
        The defaults, in [0, 1], of the per-view parameters of the same names (ambient and directional light).
    fov : float, default 60.0
        The full field of view, in degrees.
    materials : bool, default False
        Draw the mesh's materials and textures rather than one colour.
    threads : int, optional
        embree only (ignored where auto picks another backend): views traced in parallel; None: one per usable core.

    Raises
    ------
    ValueError
        An unknown backend, settings out of range, or ``threads`` for gl or pytorch3d.
    ImportError
        A backend named that cannot run here (the message says what to install).

    Examples
    --------
    >>> renderer = Renderer(image_size=64)
    >>> images = renderer.render(mesh, azimuth=[0, 90, 180], elevation=30)  # doctest: +SKIP
    >>> images.shape  # doctest: +SKIP
    torch.Size([3, 3, 64, 64])
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
        threads: int | None = None,
    ) -> None:
        rgb, image, source = parse_background(background)
        self.settings = RenderSettings(
            image_size, supersample, rgb, as_rgb(color), check_probability(ambient, "ambient"),
            check_probability(light_intensity, "light_intensity"), check_scalar(fov, "fov", float), bool(materials),
            image, source,
        )
        self.backend_name = _resolve_backend(backend)
        self._ahead: ThreadPoolExecutor | None = None  # the render-ahead thread of render_batches, made when first used
        if self.backend_name == "embree":
            from .embree import EmbreeBackend

            self._backend = EmbreeBackend(self.settings, **({} if threads is None else {"threads": threads}))
        else:
            if threads is not None and backend != "auto":  # with auto, threads= speaks of embree, where auto picks it
                raise ValueError(f"threads= is for the embree backend; {self.backend_name} shades whole batches in torch "
                                 "(on a CPU, torch.set_num_threads sets its threads)")
            if self.backend_name == "gl":
                from .gl import GLBackend

                self._backend = GLBackend(self.settings)
            else:
                from .pytorch3d import Pytorch3DBackend

                self._backend = Pytorch3DBackend(self.settings)

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
        """The same renderer (backend and look) at another image size.

        Parameters
        ----------
        image_size : int
            The new width and height, in pixels.
        """
        other = object.__new__(Renderer)
        other.settings = replace(self.settings, image_size=image_size)
        other.backend_name = self.backend_name
        other._backend = type(self._backend)(other.settings, **self._backend.options())
        other._ahead = None
        return other

    def describe(self) -> dict[str, Any]:
        """Backend and settings, as plain values (for dataset attrs)."""
        return {"backend": self.backend_name, **self.settings.describe()}

    def __repr__(self) -> str:
        s = self.settings
        look = ", materials=True" if s.materials else ""
        return f"Renderer(backend={self.backend_name!r}, image_size={s.image_size}, supersample={s.supersample}{look})"

    def render_batches(self, mesh: Mesh, batches: Sequence[Any], *, space: Space | None = None,
                       ahead: bool = False) -> Iterator[torch.Tensor]:
        """Images of each batch of points in turn, as [`render`][semkit.render] gives them.

        Parameters
        ----------
        mesh : Mesh
            The object.
        batches : sequence of array_like [B, n]
            The batches of points of ``space``.
        space : Space, optional
            Their Space (default [`Space.paper`][semkit.Space.paper]).
        ahead : bool, default False
            Render the next batch on this renderer's background thread while the caller uses the current one
            (embree and gl release the GIL, so a network classifying one batch and the renderer drawing the next
            overlap). Ignored for a differentiable backend.
        """
        if not ahead or self.differentiable or len(batches) < 2:
            for batch in batches:
                yield self.render(mesh, batch, space=space)
            return
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(1, thread_name_prefix="semkit-render-ahead")
        pending = self._ahead.submit(self.render, mesh, batches[0], space=space)
        for i in range(len(batches)):
            images = pending.result()
            if i + 1 < len(batches):
                pending = self._ahead.submit(self.render, mesh, batches[i + 1], space=space)
            yield images

    def close(self) -> None:
        """Stop this renderer's threads and drop what its backend keeps per mesh; it renders again when asked
        (threads start again then)."""
        if self._ahead is not None:
            self._ahead.shutdown()
            self._ahead = None
        self._backend.close()

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def render(self, mesh: Mesh, points: Any = None, *, space: Space | None = None, **params: Any) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] for a batch of views of ``mesh``.

        Give the views as points of a Space and/or as named values; scalars broadcast.

        Parameters
        ----------
        mesh : Mesh
            The object (see `load_mesh`).
        points : array_like [B, n], optional
            Points of ``space``.
        space : Space, optional
            The Space of ``points`` (default [`Space.paper`][semkit.Space.paper]).
        **params : float or array_like
            Named values: ``azimuth``, ``elevation`` (degrees), ``distance`` (camera distance, default 2.732),
            ``light_azimuth``, ``light_elevation`` (the light direction, default straight up), ``roll`` (degrees
            about the viewing axis; 90 turns the image content a quarter turn counter-clockwise),
            ``light_intensity`` and ``ambient`` (defaults: the renderer's).

        Raises
        ------
        TypeError
            ``mesh`` is not a [`Mesh`][semkit.Mesh].
        ValueError
            No views, unknown parameters, or invalid values (see [`Views.from_inputs`][semkit.render.Views.from_inputs]).
        """
        if not isinstance(mesh, Mesh):
            raise TypeError(f"render() needs a semkit.Mesh (see semkit.load_mesh), got {type(mesh).__name__}")
        for name, value in params.items():
            if np.size(value) == 0:
                raise ValueError(f"{name}= holds no values: give at least one view (a number, or a non-empty list)")
        if points is not None and np.ndim(points) == 2 and np.shape(points)[0] == 0:
            raise ValueError("points holds no views (0 rows): give at least one view")
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
    """The rule of ``backend="auto"`` (see [`Renderer`][semkit.Renderer])."""
    if not torch.cuda.is_available():
        return "embree"
    from .gl import SOFTWARE_RENDERERS

    driver = gl_renderer()
    if driver is not None and not driver.lower().startswith(SOFTWARE_RENDERERS):
        return "gl"
    if pytorch3d_available():
        return "pytorch3d"
    _warn_cpu_rendering(driver)
    return "embree"


@lru_cache(maxsize=1)
def _warn_cpu_rendering(driver: str | None) -> None:
    """Say once why a GPU machine renders on its CPU cores (the fix: NVIDIA's EGL for the gl backend)."""
    why = gl_unavailable_reason() if driver is None else f"OpenGL runs on {driver}, a CPU rasterizer, not on the GPU"
    warnings.warn(f"a CUDA GPU is here, but the gl backend cannot draw on it: {why}. backend='auto' renders with embree "
                  "on the CPU cores; for GPU rendering install an EGL loader (Debian: libegl1) beside NVIDIA's driver "
                  "and `pip install 'semkit[gl]'`", stacklevel=3)


def gl_unavailable_reason() -> str | None:
    """Why the gl backend cannot run here (with the fix), or None when it can."""
    from .gl import unavailable_reason

    return unavailable_reason()


def gl_renderer() -> str | None:
    """The OpenGL driver the gl backend draws with (its GL_RENDERER, e.g. Mesa's llvmpipe on a CPU); None if unusable."""
    if gl_unavailable_reason() is not None:
        return None
    from .gl import context

    return context().renderer


def pytorch3d_available() -> bool:
    """Whether pytorch3d (with its compiled extension) can be imported."""
    try:
        import pytorch3d.renderer  # noqa: F401
    except Exception:
        return False
    return True
