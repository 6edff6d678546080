"""The one body-model interface of moro: a linear-blend-skinned mesh with linear shape space.

Every body moro supports (Anny, SMPL-X, SMPL) is brought into this layout once (see
``anny_model.py`` and ``smpl_files.py``) and then posed by the same code, so everything downstream
(synthetic world, tokenizer, metrics, fitting) sees one interface:

    out = body(body_pose, betas, root_rot, root_trans)
    out.vertices  # (..., v, 3) metres
    out.joints    # (..., j, 3) skeleton joints (FK), metres
    body.joints22(out.vertices)  # (..., 22, 3) scoring joints, SMPL order
    body.coco17(out.vertices)    # (..., 17, 3) COCO keypoints

Pose convention (SMPL's): ``body_pose[..., i]`` is the rotation of joint ``i + 1`` relative to its
parent, in the axes of the canonical body frame at rest (Y up, facing +Z, left = +X); identity
everywhere gives the model's rest pose (A-pose for Anny, T-pose for SMPL-family). The root
joint (index 0) is placed by ``root_rot`` (..., 3, 3) and ``root_trans`` (..., 3), where
``root_trans`` is the *position of the root joint* (not SMPL's ``transl``; see
:meth:`BodyModel.smpl_transl_to_root_trans`). With both omitted the output is the *local*
mesh of design.md: posed by body pose only and centred on the root joint, and
``V_global = V_local @ R^T + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moro.body.model_data import BodyModelData


@dataclass
class BodyOutput:
    """Result of a body-model forward pass (all metres, leading batch shape ``...``)."""

    vertices: torch.Tensor  # (..., v, 3)
    joints: torch.Tensor  # (..., j, 3) skeleton joints after forward kinematics
    global_rotmats: torch.Tensor  # (..., j, 3, 3) joint orientations in the output frame


def _kinematic_levels(parents: list[int]) -> list[tuple[list[int], list[int]]]:
    """Group joints by depth: [(joint ids, their parent ids)] for depth 1, 2, ...

    Raises ValueError when parents do not describe one tree rooted at joint 0 with
    parents preceding children.
    """
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        if j == 0:
            if p != -1:
                raise ValueError(f"joint 0 must be the root (parent -1), got parent {p}")
            continue
        if not 0 <= p < j:
            raise ValueError(f"joint {j} has parent {p}: parents must precede children (0 <= parent < joint)")
        depth[j] = depth[p] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        ids = [j for j in range(len(parents)) if depth[j] == d]
        levels.append((ids, [parents[j] for j in ids]))
    return levels


class BodyModel(nn.Module):
    """Batched, differentiable LBS body model built from a :class:`BodyModelData`.

    Attributes (read-only buffers / properties):
        faces: (f, 3) int64 triangle indices.
        parents: list[int] of length j, ``parents[0] == -1``.
        joint_names: list[str] of the j skeleton joints.
        num_betas: size s of the linear shape space.
        foot_vertices: (4,) int64 vertex ids (L heel, L toe, R heel, R toe) for foot sliding.
    """

    def __init__(self, data: BodyModelData):
        super().__init__()
        data.validate()
        self.name = data.name
        self.meta = dict(data.meta)
        self.parents = list(data.parents)
        self.joint_names = list(data.joint_names)
        self.register_buffer("v_template", data.v_template.float())
        self.register_buffer("shapedirs", data.shapedirs.float())
        self.register_buffer("j_template", data.j_template.float())
        self.register_buffer("j_shapedirs", data.j_shapedirs.float())
        self.register_buffer("weights", data.weights.float())
        self.register_buffer("posedirs", None if data.posedirs is None else data.posedirs.float())
        self.register_buffer("faces", data.faces.long())
        self.register_buffer("joints22_regressor", data.joints22_regressor.float())
        self.register_buffer("coco17_regressor", data.coco17_regressor.float())
        self.register_buffer("foot_vertices", data.foot_vertices.long())
        jr = data.joint_regressor
        self.register_buffer("joint_regressor", None if jr is None else jr.float())
        self._levels = _kinematic_levels(self.parents)

    # ------------------------------------------------------------------ sizes
    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    # ------------------------------------------------------------------ checks
    def _check(self, body_pose, betas, root_rot, root_trans) -> torch.Size:
        j = self.num_joints
        if not torch.is_tensor(body_pose) or body_pose.shape[-3:] != (j - 1, 3, 3):
            got = tuple(body_pose.shape) if torch.is_tensor(body_pose) else type(body_pose).__name__
            raise ValueError(
                f"{self.name}: body_pose must be (..., {j - 1}, 3, 3) rotation matrices "
                f"(one per non-root joint), got {got}; convert axis-angle with "
                "moro.geometry.rotvec_to_rotmat"
            )
        batch = body_pose.shape[:-3]
        if not torch.is_tensor(betas) or betas.shape[-1:] != (self.num_betas,):
            got = tuple(betas.shape) if torch.is_tensor(betas) else type(betas).__name__
            raise ValueError(f"{self.name}: betas must be (..., {self.num_betas}), got {got}")
        if betas.shape[:-1] not in (batch, torch.Size()):
            raise ValueError(
                f"{self.name}: betas leading shape {tuple(betas.shape[:-1])} must equal body_pose's "
                f"{tuple(batch)} or be empty (one shape shared by all); expand it explicitly"
            )
        if root_rot is not None and root_rot.shape != batch + (3, 3):
            raise ValueError(f"{self.name}: root_rot must be {tuple(batch) + (3, 3)}, got {tuple(root_rot.shape)}")
        if root_trans is not None and root_trans.shape != batch + (3,):
            raise ValueError(f"{self.name}: root_trans must be {tuple(batch) + (3,)}, got {tuple(root_trans.shape)}")
        for name, x in (("body_pose", body_pose), ("betas", betas), ("root_rot", root_rot), ("root_trans", root_trans)):
            if x is not None and not torch.isfinite(x).all():
                raise ValueError(f"{self.name}: {name} contains NaN or inf")
        return batch

    # ------------------------------------------------------------------ shape
    def shaped(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest-pose vertices (..., v, 3) and rest joints (..., j, 3) for betas (..., s)."""
        dt = betas.dtype
        v = self.v_template.to(dt) + torch.einsum("vcs,...s->...vc", self.shapedirs.to(dt), betas)
        j = self.j_template.to(dt) + torch.einsum("jcs,...s->...jc", self.j_shapedirs.to(dt), betas)
        return v, j

    def root_joint_rest(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest position (..., 3) of the root joint for betas (..., s)."""
        return self.j_template[0].to(betas.dtype) + torch.einsum("cs,...s->...c", self.j_shapedirs[0].to(betas.dtype), betas)

    def smpl_transl_to_root_trans(self, transl: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """SMPL-style ``transl`` (..., 3) -> moro's ``root_trans`` (root joint position)."""
        return transl + self.root_joint_rest(betas)

    def root_trans_to_smpl_transl(self, root_trans: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """moro's ``root_trans`` (..., 3) -> SMPL-style ``transl``."""
        return root_trans - self.root_joint_rest(betas)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        root_rot: torch.Tensor | None = None,
        root_trans: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the body.

        Args:
            body_pose: (..., j-1, 3, 3) parent-relative rotations of joints 1..j-1.
            betas: (..., s) or (s,) shape coefficients.
            root_rot: (..., 3, 3) root orientation; identity when None.
            root_trans: (..., 3) root joint position in metres; zero when None.
        Returns:
            :class:`BodyOutput` with vertices (..., v, 3), joints (..., j, 3), global_rotmats.
        """
        batch = self._check(body_pose, betas, root_rot, root_trans)
        dtype = body_pose.dtype
        # A shared shape (betas of shape (s,)) is blended once and broadcast over the batch.
        v_shaped, j_rest = self.shaped(betas.to(dtype))  # (..., v, 3) | (v, 3), (..., j, 3) | (j, 3)
        eye = torch.eye(3, dtype=dtype, device=body_pose.device)
        if self.posedirs is not None:
            feat = (body_pose - eye).flatten(-3)  # (..., (j-1)*9)
            v_shaped = v_shaped + torch.einsum("vcp,...p->...vc", self.posedirs.to(dtype), feat)

        # Forward kinematics, one batched matmul per tree depth.
        rots = [eye.expand(batch + (3, 3))] + list(body_pose.unbind(-3))
        pos = [torch.zeros(batch + (3,), dtype=dtype, device=body_pose.device)] + [None] * (self.num_joints - 1)
        for ids, par in self._levels:
            g_par = torch.stack([rots[p] for p in par], -3)  # (..., n, 3, 3)
            r_loc = torch.stack([rots[i] for i in ids], -3)
            bone = j_rest[..., ids, :] - j_rest[..., par, :]  # (..., n, 3)
            p_par = torch.stack([pos[p] for p in par], -2)
            g_new = g_par @ r_loc
            p_new = p_par + (g_par @ bone.unsqueeze(-1)).squeeze(-1)
            for k, i in enumerate(ids):
                rots[i] = g_new[..., k, :, :]
                pos[i] = p_new[..., k, :]
        glob = torch.stack(rots, -3)  # (..., j, 3, 3)
        joints = torch.stack(pos, -2)  # (..., j, 3), root at the origin

        # Skinning: per-joint affine maps blended per vertex.
        trans = joints - (glob @ j_rest.unsqueeze(-1)).squeeze(-1)  # (..., j, 3)
        affine = torch.cat([glob, trans.unsqueeze(-1)], -1).flatten(-2)  # (..., j, 12)
        blended = torch.einsum("vj,...jk->...vk", self.weights.to(dtype), affine).unflatten(-1, (3, 4))
        verts = (blended[..., :3] @ v_shaped.unsqueeze(-1)).squeeze(-1) + blended[..., 3]

        if root_rot is not None:
            verts = verts @ root_rot.transpose(-1, -2)
            joints = joints @ root_rot.transpose(-1, -2)
            glob = root_rot.unsqueeze(-3) @ glob
        if root_trans is not None:
            verts = verts + root_trans.unsqueeze(-2)
            joints = joints + root_trans.unsqueeze(-2)
        return BodyOutput(vertices=verts, joints=joints, global_rotmats=glob)

    # ------------------------------------------------------------------ regressed point sets
    def _regress(self, regressor: torch.Tensor, vertices: torch.Tensor, what: str) -> torch.Tensor:
        if vertices.shape[-2:] != (self.num_vertices, 3):
            raise ValueError(f"{self.name}: {what} needs vertices (..., {self.num_vertices}, 3), got {tuple(vertices.shape)}")
        return torch.einsum("jv,...vc->...jc", regressor.to(vertices.dtype), vertices)

    def joints22(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 22 scoring joints (..., 22, 3), SMPL order (``joint_sets.JOINTS22``), from vertices (..., v, 3)."""
        return self._regress(self.joints22_regressor, vertices, "joints22")

    def coco17(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 17 COCO keypoints (..., 17, 3), COCO order (``joint_sets.COCO17``), from vertices (..., v, 3)."""
        return self._regress(self.coco17_regressor, vertices, "coco17")

    def foot_points(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 4 foot-sliding vertices (..., 4, 3): L heel, L toe, R heel, R toe."""
        return vertices[..., self.foot_vertices, :]

    def identity_pose(self, *batch: int, dtype=torch.float32) -> torch.Tensor:
        """Rest pose (*batch, j-1, 3, 3) of identity rotations."""
        eye = torch.eye(3, dtype=dtype, device=self.v_template.device)
        return eye.expand(*batch, self.num_joints - 1, 3, 3).clone()

    def zero_betas(self, *batch: int, dtype=torch.float32) -> torch.Tensor:
        """Mean shape (*batch, s)."""
        return torch.zeros(*batch, self.num_betas, dtype=dtype, device=self.v_template.device)
