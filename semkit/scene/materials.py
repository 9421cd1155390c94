"""Materials of a mesh: per-face colours, textures with their wrap modes, vertex colours and alpha masks.

[`Materials`][semkit.scene.materials.Materials] is what every reader fills (OBJ/MTL in `.mesh`,
glTF in `.gltf`, coloured OFF in `.off`) and what every renderer
backend draws; [`sample_texture`][semkit.scene.materials.sample_texture] is the one texture lookup they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class MeshError(ValueError):
    """A mesh file exists but cannot be used (empty, corrupt, degenerate)."""


class MeshWarning(UserWarning):
    """A mesh loads but will not render usefully (all faces degenerate, a far outlier vertex)."""


class MaterialWarning(UserWarning):
    """A material or texture file is missing or unreadable; the mesh falls back to Kd or white."""


#: How a texture repeats outside [0, 1]: glTF's samplers' REPEAT, CLAMP_TO_EDGE and MIRRORED_REPEAT (OBJ: repeat).
WRAP_MODES = ("repeat", "clamp", "mirror")


@dataclass(eq=False)
class Materials:
    """Per-face appearance: a base colour, times a texture, times per-vertex colours.

    A face's colour at a point is ``kd * texture(uv) * vertex_rgb``.
    Blending, emission, specular and metallic terms are not modelled.

    Parameters
    ----------
    kd : numpy.ndarray [F, 3]
        The colour of each face in [0, 1] (OBJ's Kd, glTF's baseColorFactor); values outside are clipped.
    texture : numpy.ndarray of int [F]
        The index into ``images`` of each face's texture, or -1 for none.
    uv : numpy.ndarray [F, 3 corners, 2]
        The corners' texture coordinates (OBJ convention: v grows upward; unused where ``texture`` is -1).
    images : list of numpy.ndarray [H, W, 3] or [H, W, 4], default []
        The textures in [0, 1], with alpha when 4 channels, top row first as stored in the files.
    wrap : list of (str, str), optional
        One (s, t) pair of `WRAP_MODES` per image; None: repeat.
    vertex_rgb : numpy.ndarray [F, 3 corners, 3], optional
        The corners' colours (glTF COLOR_0, PLY/OFF/OBJ vertex colours), interpolated over the face.
    cutoff : numpy.ndarray [F], optional
        On a textured face, the points whose texture alpha is below its cutoff are holes (glTF's alphaMode MASK;
        0 for an opaque face).

    Raises
    ------
    MeshError
        Shapes that do not agree, texture indices out of range, or unknown wrap modes.
    """

    kd: np.ndarray
    texture: np.ndarray
    uv: np.ndarray
    images: list[np.ndarray] = field(default_factory=list)
    wrap: list[tuple[str, str]] | None = None
    vertex_rgb: np.ndarray | None = None
    cutoff: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.kd = np.ascontiguousarray(np.clip(self.kd, 0.0, 1.0), dtype=np.float32)
        self.texture = np.ascontiguousarray(self.texture, dtype=np.int64)
        self.uv = np.ascontiguousarray(self.uv, dtype=np.float32)
        self.images = [np.ascontiguousarray(image, dtype=np.float32) for image in self.images]
        self.wrap = [tuple(w) for w in self.wrap] if self.wrap is not None else [("repeat", "repeat")] * len(self.images)
        F = len(self.kd)
        if self.kd.shape != (F, 3) or self.texture.shape != (F,) or self.uv.shape != (F, 3, 2):
            raise MeshError(
                f"materials need kd [F, 3], texture [F] and uv [F, 3, 2]; got {self.kd.shape}, "
                f"{self.texture.shape}, {self.uv.shape}"
            )
        if F and (self.texture.min() < -1 or self.texture.max() >= len(self.images)):
            raise MeshError(f"texture indices must be -1 or below the {len(self.images)} images")
        for image in self.images:
            if image.ndim != 3 or image.shape[2] not in (3, 4):
                raise MeshError(f"texture images must be [H, W, 3] or [H, W, 4] (with alpha), got {image.shape}")
        if len(self.wrap) != len(self.images) or any(len(w) != 2 or not set(w) <= set(WRAP_MODES) for w in self.wrap):
            raise MeshError(f"wrap needs one (s, t) pair of {WRAP_MODES} per image, got {self.wrap}")
        if self.vertex_rgb is not None:
            self.vertex_rgb = np.ascontiguousarray(np.clip(self.vertex_rgb, 0.0, 1.0), dtype=np.float32)
            if self.vertex_rgb.shape != (F, 3, 3):
                raise MeshError(f"vertex_rgb must be [F, 3 corners, 3], got {self.vertex_rgb.shape}")
        if self.cutoff is not None:
            self.cutoff = np.ascontiguousarray(self.cutoff, dtype=np.float32)
            if self.cutoff.shape != (F,):
                raise MeshError(f"cutoff must be [F], got {self.cutoff.shape}")
            if not (self.cutoff > 0).any():
                self.cutoff = None

    @classmethod
    def colors(cls, kd: Any) -> "Materials":
        """Materials of plain colours, no textures.

        Parameters
        ----------
        kd : array_like [F, 3]
            One RGB colour in [0, 1] per face.
        """
        kd = np.asarray(kd, dtype=np.float32)
        return cls(kd, np.full(len(kd), -1), np.zeros((len(kd), 3, 2), np.float32))

    @property
    def textured(self) -> bool:
        """Whether any face has a texture."""
        return bool((self.texture >= 0).any())

    @property
    def interpolated(self) -> bool:
        """Whether colours vary over a face (textures or vertex colours): renderers then need each hit's barycentrics."""
        return self.textured or self.vertex_rgb is not None

    @property
    def masked(self) -> np.ndarray | None:
        """The faces [F] bool with holes where their texture's alpha is below their cutoff, or None if none has."""
        if self.cutoff is None:
            return None
        masked = (self.cutoff > 0) & (self.texture >= 0)
        return masked if masked.any() else None

    def alpha(self, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """The texture alpha [N] at points of faces (1 where a texture has no alpha).

        Parameters
        ----------
        faces : numpy.ndarray of int [N]
            The face of each point.
        uv : numpy.ndarray [N, 2]
            The points' texture coordinates.
        """
        alpha = np.ones(len(faces), np.float32)
        texture = self.texture[faces]
        for t in np.unique(texture[texture >= 0]):
            image = self.images[t]
            if image.shape[2] == 4:
                where = texture == t
                alpha[where] = sample_texture(image[..., 3:], uv[where], self.wrap[t])[:, 0]
        return alpha

    def holes(self, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Which points [N] of faces are alpha-masked holes (alpha below their face's cutoff).

        Parameters
        ----------
        faces : numpy.ndarray of int [N]
            The face of each point.
        uv : numpy.ndarray [N, 2]
            The points' texture coordinates.
        """
        if self.cutoff is None:
            return np.zeros(len(faces), bool)
        return self.alpha(faces, uv) < self.cutoff[faces]

    def __len__(self) -> int:
        return len(self.kd)


def with_vertex_colors(materials: Materials | None, corner_rgb: np.ndarray, n_faces: int) -> Materials:
    """``materials`` (white where None) with per-corner colours ``corner_rgb`` [F, 3, 3]."""
    if materials is None:
        materials = Materials.colors(np.ones((n_faces, 3)))
    m = materials
    return Materials(m.kd, m.texture, m.uv, m.images, m.wrap, corner_rgb, m.cutoff)


def front_twins(group: np.ndarray, toward: np.ndarray) -> np.ndarray:
    """For each face [F], the coincident face whose material shows in a view.

    That is the first (lowest index) face of its group whose front side (by
    its winding) faces the camera, or the group's first face when none does.

    Parameters
    ----------
    group : numpy.ndarray of int [F]
        Each face's group of coincident faces ([`Mesh.twins`][semkit.Mesh.twins]).
    toward : numpy.ndarray of bool [F]
        Whether each face's front side faces the camera.
    """
    F = len(group)
    key = np.arange(F) + np.where(toward, 0, F)
    best = np.full(int(group.max()) + 1, 2 * F)
    np.minimum.at(best, group, key)
    return best[group] % F


def sample_texture(image: Any, uv: Any, wrap: tuple[str, str] = ("repeat", "repeat")) -> Any:
    """Bilinear texture lookup, [N, C], wrapping outside [0, 1].

    Works on numpy arrays and on torch tensors alike (the renderer backends
    share it); clamp and mirror act on texel indices, as OpenGL's
    CLAMP_TO_EDGE and MIRRORED_REPEAT do.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor [H, W, C]
        The texture, top row first.
    uv : numpy.ndarray or torch.Tensor [N, 2]
        Texture coordinates with v growing upward: (0, 0) is the bottom-left corner of the image, texel centres
        sit at half-integers.
    wrap : (str, str), default ("repeat", "repeat")
        The (s, t) modes of `WRAP_MODES` outside [0, 1].
    """
    torch_mode = isinstance(image, torch.Tensor)
    xp = torch if torch_mode else np
    H, W = image.shape[0], image.shape[1]
    x = uv[:, 0] * W - 0.5
    y = (1.0 - uv[:, 1]) * H - 0.5
    x0, y0 = xp.floor(x), xp.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0 = x0.long() if torch_mode else x0.astype(np.int64)
    y0 = y0.long() if torch_mode else y0.astype(np.int64)
    x0, x1 = _wrap(x0, W, wrap[0], xp), _wrap(x0 + 1, W, wrap[0], xp)
    y0, y1 = _wrap(y0, H, wrap[1], xp), _wrap(y0 + 1, H, wrap[1], xp)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _wrap(index: Any, n: int, mode: str, xp: Any) -> Any:
    """Texel indices folded into [0, n) by a wrap mode."""
    if mode == "clamp":
        return xp.clip(index, 0, n - 1)
    if mode == "mirror":
        index = index % (2 * n)
        return xp.where(index >= n, 2 * n - 1 - index, index)
    return index % n
