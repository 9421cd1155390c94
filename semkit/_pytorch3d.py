"""The pytorch3d backend: GPU rasterization with gradients.

It renders exactly what the embree backend renders (same camera from
:mod:`semkit.camera`, same two-sided flat shading, hard visibility,
supersampling), rasterizing on the GPU. When any semantic parameter
requires grad, the image also carries gradients: through the shading (the
light direction) directly, and through the geometry (camera azimuth,
elevation, distance) by edge sampling (:mod:`semkit._edges`).
"""

from __future__ import annotations

import weakref

import torch

from ._edges import Topology, edge_correction, project
from .camera import Views
from .mesh import Mesh
from .renderer import RenderSettings


class Pytorch3DBackend:
    differentiable = True

    def __init__(self, settings: RenderSettings, device: str | torch.device | None = None) -> None:
        self.settings = settings
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._meshes: "weakref.WeakKeyDictionary[Mesh, tuple]" = weakref.WeakKeyDictionary()
        self._topologies: "weakref.WeakKeyDictionary[Mesh, Topology]" = weakref.WeakKeyDictionary()

    def options(self) -> dict:
        return {"device": self.device}

    def _tensors(self, mesh: Mesh) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cached = self._meshes.get(mesh)
        if cached is None:
            verts = torch.as_tensor(mesh.vertices, dtype=torch.float64, device=self.device)
            faces = torch.as_tensor(mesh.faces, dtype=torch.int64, device=self.device)
            normals = torch.as_tensor(mesh.face_normals, dtype=torch.float64, device=self.device)
            cached = self._meshes[mesh] = (verts, verts.float(), faces, normals)
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
        B, F = len(views), len(faces)
        raster = s.image_size * s.supersample
        eye = views.eye.to(self.device)
        axes = views.axes.to(self.device)
        light = views.light.to(self.device)

        # pytorch3d maps world to view as X @ R + T; with R = axes^T its view
        # axes are NMR's camera axes. It draws +X to the left, so its raster is
        # flipped along the width to NMR's orientation.
        R = axes.detach().transpose(1, 2)
        T = -(eye.detach()[:, None, :] @ R)[:, 0]
        cameras = FoVPerspectiveCameras(
            R=R.float(), T=T.float(), fov=s.fov, degrees=True, znear=0.01, zfar=100.0, device=self.device
        )
        settings = RasterizationSettings(
            image_size=raster, blur_radius=0.0, faces_per_pixel=1, cull_backfaces=False, perspective_correct=False
        )
        meshes = Meshes(verts=verts32[None].expand(B, -1, -1), faces=faces[None].expand(B, -1, -1))
        packed = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes).pix_to_face[..., 0].flip(-1)
        visible = packed >= 0
        face_ids = torch.where(visible, packed - F * torch.arange(B, device=self.device).view(B, 1, 1), -1)

        # Two-sided flat shading per face and view (the normal turned toward the camera).
        toward = torch.einsum("fj,bfj->bf", normals, eye[:, None, :] - verts[faces[:, 0]][None])
        cos = torch.einsum("fj,bj->bf", normals, light) * torch.where(toward >= 0, 1.0, -1.0)
        shade = s.ambient + s.directional * cos.clamp(min=0.0)  # [B, F]
        lit = torch.gather(shade, 1, face_ids.clamp(min=0).view(B, -1)).view_as(face_ids) * visible
        values = torch.stack([lit, visible.to(lit.dtype)])  # [2, B, H, W]: light and coverage

        if torch.is_grad_enabled() and (eye.requires_grad or axes.requires_grad):
            xy = project(verts, eye, axes, s.fov, raster)
            values = values + edge_correction(face_ids, values, xy, self._topology(mesh))

        color = torch.tensor(s.color, dtype=values.dtype, device=self.device).view(1, 3, 1, 1)
        background = torch.tensor(s.background, dtype=values.dtype, device=self.device).view(1, 3, 1, 1)
        image = color * values[0][:, None] + background * (1.0 - values[1][:, None])
        if s.supersample > 1:
            image = torch.nn.functional.avg_pool2d(image, s.supersample)
        return image.float()
