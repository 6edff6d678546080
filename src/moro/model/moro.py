"""The MoRo network: backbone + image encoder (injected), motion encoder, fusion decoder, smoother, tokenizer (frozen).

Data flow of one clip (b clips, t frames, n tokens, k codes, p patches, d width, v vertices, j joints)::

    images --backbone--> tokens --image_encoder--> patches (b,t,p,d), coarse traj (b,t,9)   [computed once]
    token ids (b,t,n) --token_emb--> (b,t,n,9) --+
    canonical traj, normalised (b,t,9) ----------+--motion_encoder--> features (b,t,n+1,d),
                                                      logits (b,t,n,k), clean cano traj, contact
    [pose feats | patches | cano feat | cam token] --decoder--> logits (b,t,n,k), refined traj (b,t,9), contact
    logits --Gumbel (hard, ST)--> one-hot @ codebook --smoother--> tokenizer decoder --> V_local (b,t,v,3)
    V_global = V_local @ R^T + t per trajectory; joints (b,t,j,3) = regressor @ V; 2D = pinhole(joints, K)

Which parts run depends on the inputs: token ids alone -> motion encoder only (motion
pretraining); image features alone -> decoder with zero motion features (image pretraining);
both -> everything (video). Units: metres, radians; trajectories ``[6D (first two rows of R), t (m)]``
with ``V_global = V_local @ R^T + t``; canonical trajectories are z-normalised with the
statistics stored in the buffers ``traj_mean`` / ``traj_std`` (set them from data with
:meth:`MoRo.set_trajectory_stats`).

Parameter names: ``motion_encoder.m_*``, ``decoder.d_*``, ``smoother.*`` and ``token_emb.weight``
equal the authors' ``mask_transformer.dst_former.m_*``, ``mask_transformer.dst_former.d_*``,
``smoother.*`` and ``mask_transformer.token_emb.weight``; the injected ``backbone.*`` and
``image_encoder.img_*`` equal ``backbone.model.*`` and ``mask_transformer.dst_former.img_*``;
``tokenizer.*`` is the authors' ``vqvae.*`` under the tokenizer's own renaming
(see :data:`OFFICIAL_PREFIXES`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moro.geometry import TrajectoryStats, project_points, rot6d_to_rotmat, rotmat_to_rot6d, trajectory_to_canonical
from moro.geometry import canonical_to_trajectory
from moro.model.config import MoRoConfig
from moro.model.decoder import DecoderOutput, FusionDecoder
from moro.model.gumbel import gumbel_softmax_hard
from moro.model.motion_encoder import TRAJ_DIM, CodebookEmbedding, MotionEncoder, MotionEncoderOutput
from moro.model.smoother import TokenSmoother

__all__ = ["OFFICIAL_PREFIXES", "ImageFeatures", "MoRoOutput", "MoRo"]

# Our module prefix -> the authors' state-dict prefix (official checkpoint layout, section 2).
OFFICIAL_PREFIXES = {
    "motion_encoder.": "mask_transformer.dst_former.",  # m_* keys
    "decoder.": "mask_transformer.dst_former.",  # d_* keys
    "token_emb.": "mask_transformer.token_emb.",
    "smoother.": "smoother.",
    "backbone.": "backbone.model.",
    "image_encoder.": "mask_transformer.dst_former.",  # img_* keys
}


@dataclass
class ImageFeatures:
    """Per-frame outputs of the image encoder (computed once per clip)."""

    patch_features: torch.Tensor  # (b, t, p, d) patch tokens at the transformer width
    coarse_rot6d: torch.Tensor  # (b, t, 6) coarse camera rotation, 6D (first two rows)
    coarse_transl: torch.Tensor  # (b, t, 3) coarse full-image camera translation, metres
    bbox_feature: torch.Tensor | None = None  # (b, t, d) the bbox token's output, if given

    @classmethod
    def from_encoder_output(cls, out: Any) -> "ImageFeatures":
        """Wrap an image encoder's output: an object with the field names above, a dict, or a 4-tuple
        ``(patch_features, bbox_feature, coarse_rot6d, coarse_transl)``."""
        if isinstance(out, cls):
            return out
        names = ("patch_features", "bbox_feature", "coarse_rot6d", "coarse_transl")
        if isinstance(out, dict):
            return cls(**{k: out.get(k) for k in names})
        if all(hasattr(out, k) for k in names):
            return cls(**{k: getattr(out, k) for k in names})
        if isinstance(out, (tuple, list)) and len(out) == 4:
            return cls(**dict(zip(names, out)))
        raise TypeError(f"cannot read image features from {type(out).__name__}; expected fields {names}")

    @property
    def coarse_traj(self) -> torch.Tensor:
        """(b, t, 9) ``[6D re-orthonormalised, t (m)]``, the input of the camera-trajectory token."""
        return torch.cat((rotmat_to_rot6d(rot6d_to_rotmat(self.coarse_rot6d)), self.coarse_transl), dim=-1)


@dataclass
class MoRoOutput:
    """What one forward pass produced; parts that did not run are None."""

    motion: MotionEncoderOutput | None = None
    decoder: DecoderOutput | None = None
    coarse_traj: torch.Tensor | None = None  # (b, t, 9) from the image encoder

    @property
    def logits(self) -> torch.Tensor:
        """(b, t, n, k) the final pose-token logits: the decoder's if it ran, else the motion encoder's."""
        part = self.decoder if self.decoder is not None else self.motion
        if part is None:
            raise ValueError("nothing ran: give token ids and/or image features")
        return part.logits

    def loss_inputs(self) -> dict[str, torch.Tensor]:
        """The network-head predictions under the names of :func:`moro.model.losses.moro_losses`."""
        pred: dict[str, torch.Tensor] = {}
        if self.motion is not None:
            pred.update(motion_logits=self.motion.logits, cano_traj=self.motion.cano_traj,
                        motion_contact=self.motion.contact_logits)
        if self.decoder is not None:
            pred.update(decoder_logits=self.decoder.logits, traj_refined=self.decoder.traj,
                        decoder_contact=self.decoder.contact_logits)
        if self.coarse_traj is not None:
            pred["traj_coarse"] = self.coarse_traj
        return pred


class MoRo(nn.Module):
    """The assembled network.

    Args:
        config: :class:`~moro.model.config.MoRoConfig`.
        tokenizer: a :class:`~moro.tokenizer.MeshVQVAE` whose layout matches ``config.tokens``;
            it is frozen here (no gradients, kept in eval mode).
        image_encoder: module ``(patch_tokens (b,t,p,d_bb), bbox_info (b,t,3)) -> output`` that
            :meth:`ImageFeatures.from_encoder_output` reads (``moro.model.image_encoder.ImageEncoder``);
            None for motion-only use. Its ``config.width`` must equal ``transformer.width``.
        backbone: image backbone ``(b, 3, H, W) -> (b, p, d_bb)`` with ``encode_frames``
            (``moro.model.backbones``); None when patch tokens are given directly.
        joint_regressor: (j, v) joints-from-vertices matrix for the tokenizer's mesh (e.g. the
            body model's ``joints22_regressor`` restricted to the tokenized vertices); None skips
            joints. Not saved (body-model data); pass it again to :meth:`from_checkpoint`.
        traj_stats: canonical-trajectory statistics (default: mean 0, std 1 until set).
    """

    def __init__(
        self,
        config: MoRoConfig,
        tokenizer: nn.Module,
        image_encoder: nn.Module | None = None,
        joint_regressor: torch.Tensor | None = None,
        traj_stats: TrajectoryStats | None = None,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        tok, tr = config.tokens, config.transformer
        checks = {"num_tokens": tokenizer.num_tokens, "num_codes": tokenizer.config.codebook_size,
                  "code_dim": tokenizer.config.latent_dim}
        for name, value in checks.items():
            if getattr(tok, name) != value:
                raise ValueError(f"config tokens.{name}={getattr(tok, name)} but the tokenizer has {value}; "
                                 f"set tokens.{name}={value} (or build the config with MoRoConfig.tiny(tokenizer.config, v))")
        self.config = config
        kw = dict(mlp_ratio=tr.mlp_ratio, rope_base=tr.rope_base, max_positions=tr.max_positions, eps=tr.ln_eps)
        self.token_emb = CodebookEmbedding(tok.num_codes, tok.code_dim)
        self.motion_encoder = MotionEncoder(tr.width, tr.motion_depth, tr.num_heads, tr.window, tok.num_tokens,
                                            tok.num_codes, tok.code_dim, **kw)
        self.decoder = FusionDecoder(tr.width, tr.decoder_depth, tr.num_heads, tr.window, tok.num_tokens,
                                     tok.num_codes, **kw)
        self.smoother = TokenSmoother(tok.code_dim, config.smoother)
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        enc_width = getattr(getattr(image_encoder, "config", None), "width", tr.width)
        if enc_width != tr.width:
            raise ValueError(f"the image encoder emits {enc_width}-d features but transformer.width={tr.width}; "
                             f"set transformer.width={enc_width} or build the image encoder with width={tr.width}")
        if backbone is not None and image_encoder is not None and hasattr(image_encoder, "check_backbone"):
            image_encoder.check_backbone(backbone)
        self.backbone = backbone
        self.image_encoder = image_encoder
        if joint_regressor is not None and tuple(joint_regressor.shape[1:]) != (tokenizer.num_vertices,):
            raise ValueError(f"joint_regressor must be (j, {tokenizer.num_vertices}) for the tokenizer's mesh, "
                             f"got {tuple(joint_regressor.shape)}; drop the columns of vertices the tokenizer removes")
        self.register_buffer("joint_regressor", None if joint_regressor is None else joint_regressor.float(),
                             persistent=False)
        self.register_buffer("traj_mean", torch.zeros(TRAJ_DIM))
        self.register_buffer("traj_std", torch.ones(TRAJ_DIM))
        if traj_stats is not None:
            self.set_trajectory_stats(traj_stats)
        if self.token_emb.weight.device.type != "meta":
            self.token_emb.copy_codebook(tokenizer.codebook)

    # ------------------------------------------------------------------ housekeeping
    @property
    def mask_id(self) -> int:
        """Id of [MASK] = k."""
        return self.token_emb.mask_id

    def train(self, mode: bool = True) -> "MoRo":
        super().train(mode)
        self.tokenizer.eval()  # frozen: never update its codebook statistics
        return self

    def sync_codebook(self) -> None:
        """Copy the tokenizer's current codebook into ``token_emb`` (after loading a tokenizer)."""
        self.token_emb.copy_codebook(self.tokenizer.codebook)

    @torch.no_grad()
    def set_trajectory_stats(self, stats: TrajectoryStats) -> None:
        self.traj_mean.copy_(stats.mean)
        self.traj_std.copy_(stats.std)

    @property
    def trajectory_stats(self) -> TrajectoryStats:
        return TrajectoryStats(mean=self.traj_mean.detach().cpu(), std=self.traj_std.detach().cpu())

    def part_modules(self) -> dict[str, nn.Module]:
        """Named parts for summaries: image backbone / image encoder (if any), motion encoder, ..."""
        parts: dict[str, nn.Module] = {}
        if self.backbone is not None:
            parts["image_backbone"] = self.backbone
        if self.image_encoder is not None:
            parts["image_encoder"] = self.image_encoder
        parts.update(motion_encoder=self.motion_encoder, decoder=self.decoder, smoother=self.smoother,
                     tokenizer=self.tokenizer)
        return parts

    # ------------------------------------------------------------------ trajectories
    def normalize_cano(self, cano: torch.Tensor) -> torch.Tensor:
        """(..., 9) canonical trajectory -> z-scores."""
        return (cano - self.traj_mean.to(cano)) / self.traj_std.to(cano)

    def denormalize_cano(self, z: torch.Tensor) -> torch.Tensor:
        """(..., 9) z-scores -> canonical trajectory (6D, metres per frame)."""
        return z * self.traj_std.to(z) + self.traj_mean.to(z)

    def canonical_input(self, traj: torch.Tensor) -> torch.Tensor:
        """Motion-encoder input from an absolute trajectory: (b, t, 9) ``[6D, t]`` -> (b, t, 9) normalised canonical."""
        return self.normalize_cano(trajectory_to_canonical(rot6d_to_rotmat(traj[..., :6]), traj[..., 6:]))

    # ------------------------------------------------------------------ forward
    def encode_image(
        self,
        bbox_info: torch.Tensor,
        images: torch.Tensor | None = None,
        patch_tokens: torch.Tensor | None = None,
        chunk_size: int | None = None,
    ) -> ImageFeatures:
        """Per-frame image features of a clip (backbone, then image encoder).

        Args:
            bbox_info: (b, t, 3) CLIFF bbox info ``[(cx - K02) / f, (cy - K12) / f, 200 s / f]``.
            images: (b, t, 3, H, W) ImageNet-normalised crops (needs the backbone), or
            patch_tokens: (b, t, p, d_bb) backbone tokens computed elsewhere.
            chunk_size: frames per backbone call (bounds activation memory).
        Returns:
            :class:`ImageFeatures`.
        """
        if self.image_encoder is None:
            raise ValueError("this MoRo has no image encoder; pass image_encoder= when building it")
        if (images is None) == (patch_tokens is None):
            raise ValueError("give exactly one of images (b, t, 3, H, W) or patch_tokens (b, t, p, d)")
        if images is not None:
            if self.backbone is None:
                raise ValueError("this MoRo has no backbone; pass backbone= when building it, or give patch_tokens")
            patch_tokens = self.backbone.encode_frames(images, chunk_size)
        return ImageFeatures.from_encoder_output(self.image_encoder(patch_tokens, bbox_info))

    def forward(
        self,
        token_ids: torch.Tensor | None = None,
        cano_traj: torch.Tensor | None = None,
        image: ImageFeatures | None = None,
        pose_logits: bool = True,
    ) -> MoRoOutput:
        """One pass of the network.

        Args:
            token_ids: (b, t, n) int64 in [0, k] ([MASK] = k), or None (no motion encoder).
            cano_traj: (b, t, 9) normalised canonical trajectory for the motion encoder; None = zeros.
            image: :class:`ImageFeatures` for the decoder, or None (motion only).
            pose_logits: False skips both pose heads (their ``logits`` are None); the decoding loop
                (:func:`~moro.inference.decoding.model_step`) scores the still-masked slots itself.
        Returns:
            :class:`MoRoOutput`.
        """
        if token_ids is None and image is None:
            raise ValueError("give token_ids (motion encoder) and/or image features (decoder)")
        out = MoRoOutput()
        if token_ids is not None:
            if token_ids.dim() != 3:
                raise ValueError(f"token_ids must be (b, t, n), got shape {tuple(token_ids.shape)}")
            if cano_traj is None:
                cano_traj = self.token_emb.weight.new_zeros(*token_ids.shape[:2], TRAJ_DIM)
            out.motion = self.motion_encoder(self.token_emb(token_ids), cano_traj, pose_logits)
        if image is not None:
            out.coarse_traj = image.coarse_traj
            feats = None if out.motion is None else out.motion.features
            out.decoder = self.decoder(image.patch_features, out.coarse_traj, feats, pose_logits)
        return out

    # ------------------------------------------------------------------ meshes and joints
    def local_mesh(self, token_vectors: torch.Tensor) -> torch.Tensor:
        """(b, t, n, dc) code vectors -> smoother -> tokenizer decoder -> (b, t, v, 3) local mesh, metres."""
        return self.tokenizer.decode_latents(self.smoother(token_vectors))

    def mesh_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """(b, t, n) code ids in [0, k) -> (b, t, v, 3) local mesh (inference path)."""
        if int(ids.max()) >= self.mask_id or int(ids.min()) < 0:
            raise ValueError(f"ids must be codes in [0, {self.mask_id}); replace [MASK] before decoding")
        return self.local_mesh(self.token_emb(ids))

    def mesh_from_logits(self, logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
        """Differentiable: (b, t, n, k) logits -> hard Gumbel one-hot (straight-through) @ codebook -> mesh."""
        one_hot = gumbel_softmax_hard(logits, tau, generator)
        return self.local_mesh(one_hot @ self.token_emb.codebook.to(one_hot.dtype))

    def joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """(..., v, 3) -> (..., j, 3) with the injected joint regressor."""
        if self.joint_regressor is None:
            raise ValueError("this MoRo has no joint regressor; pass joint_regressor= (j, v) when building it")
        return torch.einsum("jv,...vc->...jc", self.joint_regressor.to(vertices.dtype), vertices)

    def place_joints(self, joints_local: torch.Tensor, traj: torch.Tensor) -> torch.Tensor:
        """Joints of ``V_local @ R^T + t``: (b, t, j, 3) local, (b, t, 9) trajectory -> (b, t, j, 3).

        Uses linearity of the regressor: ``J(V R^T + t) = J(V) R^T + rowsum(J) t``.
        """
        R = rot6d_to_rotmat(traj[..., :6])  # (b, t, 3, 3)
        rowsum = self.joint_regressor.sum(-1).to(traj.dtype)  # (j,)
        return joints_local @ R.transpose(-1, -2) + rowsum[:, None] * traj[..., None, 6:]

    def predictions(
        self,
        out: MoRoOutput,
        tau: float,
        generator: torch.Generator | None = None,
        first_pose: tuple[torch.Tensor, torch.Tensor] | None = None,
        K: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Everything :func:`~moro.model.losses.moro_losses` can use, through the differentiable chain.

        Args:
            out: a forward pass.
            tau: Gumbel temperature (training schedule, or 0.5 for validation).
            generator: Gumbel noise RNG (None: hard argmax with straight-through gradients).
            first_pose: ground-truth ``(R0 (b, 3, 3), t0 (b, 3))`` of frame 0; the motion encoder's
                canonical trajectory is rolled out from it (supplement A.5). None skips ``cano``.
            K: (b, 3, 3) or (b, t, 3, 3) intrinsics; projects every camera-frame trajectory's joints.
        Returns:
            dict with ``verts_local``, the head outputs of :meth:`MoRoOutput.loss_inputs`, and per
            trajectory source ``joints_{src}`` (+ ``joints2d_{src}``, ``joints2d_valid_{src}``).
        """
        pred = out.loss_inputs()
        pred["verts_local"] = self.mesh_from_logits(out.logits, tau, generator)
        if self.joint_regressor is None:
            return pred
        joints_local = self.joints(pred["verts_local"])  # (b, t, j, 3)
        trajs = {}
        if out.coarse_traj is not None:
            trajs["coarse"] = out.coarse_traj
        if out.motion is not None and first_pose is not None:
            R, t = canonical_to_trajectory(self.denormalize_cano(out.motion.cano_traj), *first_pose)
            trajs["cano"] = torch.cat((rotmat_to_rot6d(R), t), dim=-1)
        if out.decoder is not None:
            trajs["refined"] = out.decoder.traj
        for src, traj in trajs.items():
            joints = self.place_joints(joints_local, traj)
            pred[f"joints_{src}"] = joints
            if K is not None:
                Kt = K if K.dim() == 4 else K[:, None].expand(*joints.shape[:2], 3, 3)
                pred[f"joints2d_{src}"], pred[f"joints2d_valid_{src}"] = project_points(joints, Kt, min_depth=0.1)
        return pred

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write weights + config + tokenizer layout (+ image-encoder spec, + ``extra`` records) atomically to ``path``."""
        from moro.model.checkpoint import save_moro

        save_moro(self, path, extra)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        image_encoder: nn.Module | None = None,
        backbone: nn.Module | None = None,
        tokenizer: nn.Module | None = None,
        joint_regressor: torch.Tensor | None = None,
        preset: str | None = None,
        map_location: str | torch.device = "cpu",
    ) -> "MoRo":
        """Rebuild a saved model; see :func:`moro.model.checkpoint.load_moro`."""
        from moro.model.checkpoint import load_moro

        return load_moro(cls, path, image_encoder=image_encoder, backbone=backbone, tokenizer=tokenizer,
                         joint_regressor=joint_regressor, preset=preset, map_location=map_location)
