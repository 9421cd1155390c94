"""The pytorch3d backend: GPU rasterization with gradients.

It renders exactly what the embree backend renders (same camera from
`semkit.render.camera`, same two-sided flat shading, per-face Kd,
bilinear textures with their wrap modes, vertex colours, alpha-masked holes
(the nearest faces per pixel, the first that is not a hole), hard
visibility, supersampling),
rasterizing on the GPU; the shading and texturing are semkit's own
(per-face colours, and UVs interpolated from pytorch3d's perspective-correct
barycentrics), not pytorch3d's shaders. When any semantic parameter
requires grad, the image also carries gradients: through the shading (the
light direction, intensity and ambient) directly, and through the geometry
(camera azimuth, elevation, distance, roll) by edge sampling
(`semkit.render.edges`).
"""

from __future__ import annotations

import weakref

import torch

from ..scene import Mesh, sample_texture
from .camera import Views
from .edges import Topology, edge_correction, project
from .settings import RenderSettings


class Pytorch3DBackend:
    differentiable = True

    def __init__(self, settings: RenderSettings, device: str | torch.device | None = None) -> None:
        self.settings = settings
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._meshes: "weakref.WeakKeyDictionary[Mesh, tuple]" = weakref.WeakKeyDictionary()
        self._topologies: "weakref.WeakKeyDictionary[Mesh, Topology]" = weakref.WeakKeyDictionary()
        self._materials: "weakref.WeakKeyDictionary[Mesh, tuple]" = weakref.WeakKeyDictionary()
        k = settings.supersample
        background = torch.as_tensor(settings.background_array(), device=self.device, dtype=torch.float64)
        # at the raster's size, so that averaging k x k blocks gives background x missed fraction
        self._background = background.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)[None]

    def options(self) -> dict:
        return {"device": self.device}

    def close(self) -> None:
        """Drop the meshes' tensors kept on the device."""
        for cache in (self._meshes, self._topologies, self._materials):
            cache.clear()

    def _tensors(self, mesh: Mesh) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cached = self._meshes.get(mesh)
        if cached is None:
            verts = torch.as_tensor(mesh.vertices, dtype=torch.float64, device=self.device)
            faces = torch.as_tensor(mesh.faces, dtype=torch.int64, device=self.device)
            normals = torch.as_tensor(mesh.face_normals, dtype=torch.float64, device=self.device)
            cached = self._meshes[mesh] = (verts, verts.float(), faces, normals)
        return cached

    def _material_tensors(self, mesh: Mesh) -> tuple:
        """(kd [F, 3], texture [F], uv [F, 3, 2], images, wraps, vertex_rgb [F, 3, 3] or None, cutoff [F] or None,
        twins) of a mesh's materials on the device.

        ``twins`` is None or (group [F], rank [F, 3]) of [`Mesh.twins`][semkit.Mesh.twins]; ``cutoff`` is None without alpha masks.
        """
        cached = self._materials.get(mesh)
        if cached is None:
            m = mesh.materials
            as_tensor = lambda a, dtype=torch.float64: torch.as_tensor(a, dtype=dtype, device=self.device)  # noqa: E731
            twins = None if mesh.twins is None else tuple(as_tensor(a, torch.int64) for a in mesh.twins)
            masked = m.masked
            cached = self._materials[mesh] = (
                as_tensor(m.kd), as_tensor(m.texture, torch.int64), as_tensor(m.uv), [as_tensor(i) for i in m.images],
                list(m.wrap), None if m.vertex_rgb is None else as_tensor(m.vertex_rgb),
                None if masked is None else as_tensor(m.cutoff * masked), twins,
            )
        return cached

    def _topology(self, mesh: Mesh) -> Topology:
        cached = self._topologies.get(mesh)
        if cached is None:
            cached = self._topologies[mesh] = Topology.of(mesh, self.device)
        return cached

    def render(self, mesh: Mesh, views: Views) -> torch.Tensor:
        from pytorch3d.renderer import FoVPerspectiveCameras, MeshRasterizer, RasterizationSettings
        from pytorch3d.structures import Meshes

        s = self.settings
        verts, verts32, faces, normals = self._tensors(mesh)
        materials = self._material_tensors(mesh) if s.materials and mesh.materials is not None else None
        textured = materials is not None and mesh.materials.interpolated
        masked = materials is not None and materials[6] is not None
        B, F = len(views), len(faces)
        raster = s.image_size * s.supersample
        eye = views.eye.to(self.device)
        axes = views.axes.to(self.device)
        light = views.light.to(self.device)
        ambient = views.ambient.to(self.device)[:, None]
        intensity = views.light_intensity.to(self.device)[:, None]

        # pytorch3d maps world to view as X @ R + T; with R = axes^T its view
        # axes are NMR's camera axes. It draws +X to the left, so its raster is
        # flipped along the width to NMR's orientation.
        R = axes.detach().transpose(1, 2)
        T = -(eye.detach()[:, None, :] @ R)[:, 0]
        cameras = FoVPerspectiveCameras(
            R=R.float(), T=T.float(), fov=s.fov, degrees=True, znear=0.01, zfar=100.0, device=self.device
        )
        # Perspective-correct barycentrics are those of the ray hit, which textures need.
        # With alpha masks, the nearest MAX_HOLES faces per pixel, of which the first that is not a hole shows.
        settings = RasterizationSettings(
            image_size=raster, blur_radius=0.0, faces_per_pixel=MAX_HOLES if masked else 1, cull_backfaces=False,
            perspective_correct=textured,
        )
        meshes = Meshes(verts=verts32[None].expand(B, -1, -1), faces=faces[None].expand(B, -1, -1))
        fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
        offsets = F * torch.arange(B, device=self.device).view(B, 1, 1, 1)
        layers = torch.where(fragments.pix_to_face >= 0, fragments.pix_to_face - offsets, -1)  # [B, H, W, K]
        layer = _first_solid(materials, layers, fragments.bary_coords) if masked else torch.zeros_like(layers[..., 0])
        face_ids = torch.gather(layers, 3, layer[..., None])[..., 0].flip(-1)
        visible = face_ids >= 0

        # Two-sided flat shading per face and view (the normal turned toward the camera).
        toward = torch.einsum("fj,bfj->bf", normals, eye[:, None, :] - verts[faces[:, 0]][None])
        cos = torch.einsum("fj,bj->bf", normals, light) * torch.where(toward >= 0, 1.0, -1.0)
        shade = ambient + intensity * cos.clamp(min=0.0)  # [B, F]
        lit = torch.gather(shade, 1, face_ids.clamp(min=0).view(B, -1)).view_as(face_ids) * visible
        coverage = visible.to(lit.dtype)
        if materials is None:
            color = torch.tensor(s.color, dtype=lit.dtype, device=self.device).view(3, 1, 1, 1)
            values = torch.cat([color * lit[None], coverage[None]])  # [4, B, H, W]: colour and coverage
        else:
            bary = None
            if textured:
                bary = torch.gather(fragments.bary_coords, 3, layer[..., None, None].expand(-1, -1, -1, 1, 3))
                bary = bary[..., 0, :].flip(-2)
            rgb = self._material_colors(materials, lit, face_ids, toward >= 0, bary)
            values = torch.cat([rgb.permute(3, 0, 1, 2), coverage[None]])

        if torch.is_grad_enabled() and (eye.requires_grad or axes.requires_grad):
            xy = project(verts, eye, axes, s.fov, raster)
            values = values + edge_correction(face_ids, values, xy, self._topology(mesh))

        image = values[:3].transpose(0, 1) + self._background * (1.0 - values[3][:, None])
        if s.supersample > 1:
            image = torch.nn.functional.avg_pool2d(image, s.supersample)
        return image.float()

    @staticmethod
    def _material_colors(
        materials: tuple, lit: torch.Tensor, face_ids: torch.Tensor, toward: torch.Tensor, bary: torch.Tensor | None
    ) -> torch.Tensor:
        """Kd * texture(uv) * shade per raster pixel [B, H, W, 3] (0 where nothing is hit).

        ``lit`` [B, H, W] is the shade of the pixel's face (0 off the mesh);
        ``toward`` [B, F] whether each face's winding faces the camera: of
        coincident faces, the first facing the camera shows (as in
        [`semkit.scene.front_twins`][semkit.scene.front_twins]); ``bary`` [B, H, W, 3] the
        barycentric weights of the hit face's corners when textured.
        """
        kd, texture, uv, images, wraps, vertex_rgb, _, twins = materials
        B, F = toward.shape
        faces = face_ids.clamp(min=0)
        shown = faces
        if twins is not None:
            group, rank = twins
            G = int(group.max()) + 1
            key = torch.arange(F, device=kd.device) + torch.where(toward, 0, F)  # [B, F]
            slot = (group + G * torch.arange(B, device=kd.device)[:, None]).reshape(-1)
            best = torch.full((B * G,), 2 * F, dtype=torch.int64, device=kd.device)
            best = best.scatter_reduce(0, slot, key.reshape(-1), reduce="amin")
            front = (best[slot] % F).view(B, F)
            shown = torch.gather(front, 1, faces.view(B, -1)).view_as(faces)
        rgb = kd[shown] * lit[..., None]
        if bary is None:
            return rgb
        hit = face_ids >= 0
        weights = bary[hit].to(uv.dtype)  # [N, 3], in the hit face's corner order
        on = shown[hit]
        if twins is not None:  # the same point in the corner order of the twin that shows
            canonical = torch.empty_like(weights).scatter_(1, rank[faces[hit]], weights)
            weights = torch.gather(canonical, 1, rank[on])
        factor = torch.ones(len(on), 3, dtype=rgb.dtype, device=rgb.device)  # no gradient: textures and colours
        if vertex_rgb is not None:
            factor = factor * (weights[..., None] * vertex_rgb[on]).sum(dim=1)
        tex = texture[on]
        for t in torch.unique(tex[tex >= 0]).tolist():
            where = tex == t
            point = (weights[where][..., None] * uv[on[where]]).sum(dim=1)
            factor[where] = factor[where] * sample_texture(images[t][..., :3], point, wraps[t])
        out = rgb.clone()
        out[hit] = rgb[hit] * factor
        return out


#: With alpha masks, at most this many faces per pixel are looked through.
MAX_HOLES = 8


def _first_solid(materials: tuple, layers: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Per pixel [B, H, W], the first of its ``layers`` [B, H, W, K] (face ids, -1 none) that is not an alpha-masked hole.

    ``bary`` [B, H, W, K, 3] are the layers' barycentric weights. Where every layer is a hole, the last one
    (a miss, or a hole that is drawn) is taken.
    """
    _, texture, uv, images, wraps, _, cutoff, _ = materials
    faces = layers.clamp(min=0)
    hit = layers >= 0
    hole = torch.zeros_like(hit)
    candidates = hit & (cutoff[faces] > 0)
    on = faces[candidates]
    point = (bary[candidates].to(uv.dtype)[..., None] * uv[on]).sum(dim=1)
    alpha = torch.ones(len(on), dtype=uv.dtype, device=uv.device)
    tex = texture[on]
    for t in torch.unique(tex[tex >= 0]).tolist():
        if images[t].shape[2] == 4:
            where = tex == t
            alpha[where] = sample_texture(images[t][..., 3:], point[where], wraps[t])[:, 0]
    hole[candidates] = alpha < cutoff[on]
    solid = ~hole
    solid[..., -1] = True
    return solid.to(torch.uint8).argmax(dim=-1)
