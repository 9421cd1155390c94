"""Render settings: what a render looks like (size, supersampling, background, colour, light, field of view).

Recorded in results, so they say how they were made; shared by every backend.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..validation import check_scalar

__all__ = ["RenderSettings", "as_rgb", "parse_background"]


@dataclass(frozen=True)
class RenderSettings:
    """What a render looks like; recorded in results so they say how they were made.

    A [`Renderer`][semkit.Renderer] builds it from its arguments (see there).

    Parameters
    ----------
    image_size : int, default 224
        Width and height of the images, in pixels, in [8, 4096].
    supersample : int, default 2
        Render at this many times the size and average blocks, in [1, 8].
    background : (float, float, float), default (0, 0, 0)
        The background colour, RGB in [0, 1].
    color : (float, float, float), default (1, 1, 1)
        The object's colour without materials, RGB in [0, 1].
    ambient, light_intensity : float, default 0.5
        Default ambient and directional light, in [0, 1].
    fov : float, default 60.0
        The full field of view in degrees, in (0, 180).
    materials : bool, default False
        Draw the mesh's materials and textures.
    background_image : numpy.ndarray [H, W, 3], optional
        A background image in [0, 1] (any size; resized to ``image_size``), replacing ``background``.
    background_source : str, optional
        Where the background image came from (a file, or "array").

    Raises
    ------
    ValueError
        A setting out of its range.
    """

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
        for name, low, high in (("image_size", 8, 4096), ("supersample", 1, 8)):
            value = check_scalar(getattr(self, name), name, int, low=low, high=high)
            object.__setattr__(self, name, value)  # numpy integers too, recorded as plain ints
        if not 0 < self.fov < 180:
            raise ValueError(f"fov (full field of view, degrees) must be in (0, 180), got {self.fov}")
        for name in ("background", "color"):
            value = getattr(self, name)
            if len(value) != 3 or not all(0.0 <= c <= 1.0 for c in value):
                raise ValueError(f"{name} must be three values in [0, 1], got {value}")
        for name in ("ambient", "light_intensity"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1] (a share of full brightness), got {value}")

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


def parse_background(value: Any) -> tuple[tuple[float, float, float], np.ndarray | None, str | None]:
    """(colour, image, source) of a ``background=`` argument; a clear error for anything else."""
    if value is None or isinstance(value, (bool, dict, set)):
        raise TypeError(f"background must be a grey level, an RGB triple, an image array [H, W, 3] in [0, 1] or an "
                        f"image file; got {value!r} (black is background=0)")
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
        return as_rgb(array.tolist()), None, None
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise ValueError(
            "background must be a grey level, an RGB triple, an image array [H, W, 3] in [0, 1] or an image file; "
            f"got an array of shape {list(array.shape)}"
        )
    if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
        raise ValueError("a background image must hold finite values in [0, 1] (divide 8-bit images by 255)")
    return (0.0, 0.0, 0.0), array, "array"


def as_rgb(value: float | Sequence[float]) -> tuple[float, float, float]:
    """A grey level or an RGB triple as three floats; a clear error for anything else."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (float(value),) * 3
    try:
        rgb = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3:
        raise ValueError(f"a colour is a grey level or three values in [0, 1], got {value!r}")
    return rgb  # type: ignore[return-value]
