"""A synthetic copy of the authors' release, written from official-checkpoint-layout.md alone.

Names and shapes follow the layout's section 3 (its notation expanded by hand here, independently
of ``moro.convert.official_layout``); widths come from :class:`Dims` (``Dims.paper()`` gives the
printed shapes, ``Dims.scaled()`` the same 792 names at test size). Values are seeded random
numbers at magnitudes that keep 32 + 12 blocks numerically tame. Also written: connection
matrices in the authors' file format (random neighbour lists) and ``amass_cum_traj.pkl``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.model import MoRoConfig, TokenConfig, TransformerConfig
from moro.model.image_encoder import ImageEncoderConfig
from moro.model.smoother import SmootherConfig
from moro.tokenizer import MeshVQVAEConfig
from moro.tokenizer.hierarchy import HierarchySpec


@dataclass(frozen=True)
class Dims:
    vit: int = 1280  # ViT width
    vit_heads: int = 16
    grid: tuple[int, int] = (16, 12)  # patch grid (h, w): 256 x 192 pixels / 16
    width: int = 1024  # transformer / image encoder width
    heads: int = 8
    tokens: int = 87
    codes: int = 512
    smoother: int = 64
    channels: tuple[int, ...] = (32, 64, 128)  # tokenizer conv widths; latent 9
    window: int = 60

    @classmethod
    def paper(cls) -> "Dims":
        return cls()

    @classmethod
    def scaled(cls) -> "Dims":
        return cls(vit=32, vit_heads=2, grid=(4, 3), width=32, heads=2, tokens=5, codes=16, smoother=8,
                   channels=(4, 6, 8), window=3)

    @property
    def image_size(self) -> tuple[int, int]:
        return 16 * self.grid[0], 16 * self.grid[1]


LEVELS_SCALED = (40, 20, 10, 5)  # vertices per level of the scaled connection matrices
BODY_SHAPES = {  # section 3.1
    "shapedirs": (10475, 3, 10), "expr_dirs": (10475, 3, 10), "faces_tensor": (20908, 3), "v_template": (10475, 3),
    "J_regressor": (55, 10475), "posedirs": (486, 31425), "parents": (55,), "lbs_weights": (10475, 55),
    "left_hand_mean": (45,), "right_hand_mean": (45,), "pose_mean": (165,), "lmk_faces_idx": (51,),
    "lmk_bary_coords": (51, 3), "vertex_joint_selector.extra_joints_idxs": (21,),
}
BODY_INT64 = {"faces_tensor", "parents", "lmk_faces_idx", "vertex_joint_selector.extra_joints_idxs"}
# section 3.2 at paper size: conv layer -> (out*in, out, vertices, slots); pool layer -> (vertices, slots)
PAPER_CONVS = {0: (96, 32, 9383, 31), 2: (2048, 64, 2618, 24), 4: (8192, 128, 546, 28), 6: (1152, 9, 87, 34),
               7: (1152, 128, 87, 34), 9: (8192, 64, 546, 28), 11: (2048, 32, 2618, 24), 13: (96, 3, 9383, 31)}
PAPER_POOLS = {1: (2618, 41), 3: (546, 59), 5: (87, 84), 8: (546, 17), 10: (2618, 15), 12: (9383, 17)}


def _lin(name: str, out: int, inp: int) -> dict:
    return {f"{name}.weight": (out, inp), f"{name}.bias": (out,)}


def release_shapes(d: Dims, conn: dict[str, np.ndarray] | None = None, body: str | None = "full") -> dict[str, tuple]:
    """The authors' state-dict names -> shapes for widths ``d`` (792 keys with ``body``).

    ``conn``: connection files {"pool0": rows, ...} giving the tokenizer's vertex and slot counts;
    None = the paper's (section 3.2 table). ``body``: "full" (section 3.1 shapes), "small" (the
    same 14 names, every size cut to 6), None (no body-model keys, as if stripped).
    """
    s: dict[str, tuple] = {}
    if body is not None:
        cut = (lambda shape: shape) if body == "full" else (lambda shape: tuple(min(x, 6) for x in shape))
        s.update({f"bm_neutral.bm.{k}": cut(v) for k, v in BODY_SHAPES.items()})
    # 3.2 tokenizer
    c = d.channels
    ins = [3, c[0], c[0], c[1], c[1], c[2], c[2], 9, c[2], c[2], c[1], c[1], c[0], c[0]]
    outs = [c[0], c[0], c[1], c[1], c[2], c[2], 9, c[2], c[2], c[1], c[1], c[0], c[0], 3]
    for l in range(14):
        v = "fully_conv_ae."
        if conn is None:
            if l in PAPER_CONVS:
                oi, o, p, m = PAPER_CONVS[l]
                s.update({f"vqvae.{v}weights{l}": (9, oi), f"vqvae.{v}bias{l}": (o,),
                          f"vqvae.{v}w_weights{l}": (p, m, 9)})
            else:
                s[f"vqvae.{v}p_neighbors{l}"] = PAPER_POOLS[l]
            continue
        rows = conn[f"pool{l}"] if l <= 6 else conn[f"unpool{13 - l}"]
        p, m = rows.shape[0], (rows.shape[1] - 1) // 2
        if l in (1, 3, 5, 8, 10, 12):
            s[f"vqvae.{v}p_neighbors{l}"] = (p, m)
        else:
            s.update({f"vqvae.{v}weights{l}": (9, outs[l] * ins[l]), f"vqvae.{v}bias{l}": (outs[l],),
                      f"vqvae.{v}w_weights{l}": (p, m, 9)})
    s.update({"vqvae.vq_vae._embedding.weight": (d.codes, 9), "vqvae.vq_vae._ema_w": (d.codes, 9),
              "vqvae.vq_vae._ema_cluster_size": (d.codes,), "vqvae.vq_vae.code_count": (d.codes,)})
    # 3.3 ViT
    b = "backbone.model."
    p = d.grid[0] * d.grid[1]
    s[b + "pos_embed"] = (1, p + 1, d.vit)
    s[b + "patch_embed.proj.weight"], s[b + "patch_embed.proj.bias"] = (d.vit, 3, 16, 16), (d.vit,)
    for i in range(32):
        k = f"{b}blocks.{i}."
        for n in ("norm1", "norm2"):
            s[f"{k}{n}.weight"], s[f"{k}{n}.bias"] = (d.vit,), (d.vit,)
        s.update(_lin(k + "attn.qkv", 3 * d.vit, d.vit) | _lin(k + "attn.proj", d.vit, d.vit)
                 | _lin(k + "mlp.fc1", 4 * d.vit, d.vit) | _lin(k + "mlp.fc2", d.vit, 4 * d.vit))
    s[b + "last_norm.weight"], s[b + "last_norm.bias"] = (d.vit,), (d.vit,)
    # 3.4 motion encoder, 3.6 decoder, 3.7 blocks
    w, f = d.width, "mask_transformer.dst_former."
    for part, depth in (("m", 4), ("d", 2)):
        for kind in ("st", "ts"):
            for i in range(depth):
                k = f"{f}{part}_transformer.blocks_{kind}.{i}."
                for x in "st":
                    for n in ("norm1", "norm2"):
                        s[f"{k}{n}_{x}.weight"], s[f"{k}{n}_{x}.bias"] = (w,), (w,)
                    s.update(_lin(f"{k}attn_{x}.qkv", 3 * w, w) | _lin(f"{k}attn_{x}.proj", w, w)
                             | _lin(f"{k}mlp_{x}.fc1", 4 * w, w) | _lin(f"{k}mlp_{x}.fc2", w, 4 * w))
        for i in range(depth):
            s.update(_lin(f"{f}{part}_transformer.ts_attn.{i}", 2, 2 * w))
        s.update(_lin(f"{f}{part}_pose_regressor", d.codes, w) | _lin(f"{f}{part}_traj_regressor", 9, w)
                 | _lin(f"{f}{part}_contact_regressor", 4, w) | _lin(f"{f}{part}_traj_embed", w, 9))
    s[f + "m_pos_enc"], s[f + "d_pos_enc"] = (1, 1, d.tokens + 1, w), (1, 1, d.tokens + 3, w)
    s.update(_lin(f + "m_token_embed", w, 9))
    # 3.5 image encoder
    s.update(_lin(f + "img_bbox_embed", w, 3) | _lin(f + "img_embed", w, d.vit) | _lin(f + "img_traj_regressor", 9, w))
    for i in range(2):
        k = f"{f}img_transformer.transformer.layers.{i}."
        s[k + "self_attn.in_proj_weight"], s[k + "self_attn.in_proj_bias"] = (3 * w, w), (3 * w,)
        s.update(_lin(k + "self_attn.out_proj", w, w) | _lin(k + "linear1", 4 * w, w) | _lin(k + "linear2", w, 4 * w))
        for n in ("norm1", "norm2"):
            s[f"{k}{n}.weight"], s[f"{k}{n}.bias"] = (w,), (w,)
    # 3.6 codebook, smoother
    s["mask_transformer.token_emb.weight"] = (d.codes + 1, 9)
    s.update({"smoother.alpha": (), "smoother.net.0.weight": (d.smoother, 9, 5),
              "smoother.net.2.weight": (d.smoother, d.smoother, 5), "smoother.net.4.weight": (9, d.smoother, 1)})
    return s


def _value(name: str, shape: tuple, g: torch.Generator) -> torch.Tensor:
    """Seeded values of a plausible magnitude for each kind of tensor."""
    short = name.rsplit(".", 1)[-1]
    if name.startswith("bm_neutral.") and short in {k.rsplit(".", 1)[-1] for k in BODY_INT64}:
        return torch.randint(0, 50, shape, generator=g, dtype=torch.int64)
    x = torch.randn(shape, generator=g)
    if "norm" in name and short == "weight":
        return 1.0 + 0.1 * x
    if short in ("bias", "in_proj_bias") or short.startswith("bias"):
        return 0.05 * x
    if short.startswith("w_weights"):
        return x / (3.0 * shape[1] ** 0.5)
    if short.startswith("weights"):  # mesh-conv basis (9, out*in)
        return 0.3 * x
    if short.startswith("p_neighbors") or short in ("_ema_cluster_size", "code_count"):
        return x.abs() + 0.1
    if name == "smoother.alpha":
        return torch.tensor(0.3)
    if len(shape) >= 2 and "pos" not in name:  # Linear / conv weights: unit gain
        fan_in = int(np.prod(shape[1:]))
        return x / fan_in**0.5
    return 0.1 * x


def release_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded tensors for ``shapes``; token_emb = [codebook | zero row], as in the release."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: _value(k, v, g) for k, v in shapes.items()}
    cb = sd["vqvae.vq_vae._embedding.weight"]
    sd["mask_transformer.token_emb.weight"] = torch.cat((cb, torch.zeros(1, cb.shape[1])))
    return sd


def random_connection_files(sizes=LEVELS_SCALED, extra_level: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random neighbour lists in the authors' format for levels ``sizes`` (+ an unused 4th level, like _pool7).

    Rows ``[count, id_1, dist_1, ...]``, padding id = input vertex count, dist -1; conv and pool
    lists start with the vertex itself (dist 0), unpool lists do not (they order entries differently).
    """
    rng = np.random.default_rng(seed)
    sizes = (*sizes, extra_level)

    def rows(n_out: int, n_in: int, first: np.ndarray | None, m: int) -> np.ndarray:
        out = np.zeros((n_out, 1 + 2 * m), dtype=np.int32)
        for u in range(n_out):
            count = int(rng.integers(1, min(m, n_in) + 1))
            ids = rng.permutation(n_in)[:count]
            if first is not None:
                ids = np.concatenate([[first[u]], rng.permutation(np.setdiff1d(np.arange(n_in), [first[u]]))])[:count]
            dists = rng.integers(1, 3, count)
            if first is not None:
                dists[0] = 0
            slots = np.full((m, 2), (n_in, -1))
            slots[:count, 0], slots[:count, 1] = ids, dists
            out[u, 0], out[u, 1:] = count, slots.reshape(-1)
        return out

    files = {}
    for i in range(len(sizes)):
        v = sizes[i]
        files[f"pool{2 * i}"] = rows(v, v, np.arange(v), int(rng.integers(4, 8)))
        files[f"unpool{2 * i}"] = rows(v, v, None, int(rng.integers(4, 8)))
        if i + 1 < len(sizes):
            kept = np.sort(rng.permutation(v)[: sizes[i + 1]])
            files[f"pool{2 * i + 1}"] = rows(sizes[i + 1], v, kept, int(rng.integers(3, 7)))
            files[f"unpool{2 * i + 1}"] = rows(v, sizes[i + 1], None, int(rng.integers(2, 5)))
    files.pop(f"pool{2 * (len(sizes) - 1)}")  # the last level has no conv lists (as _pool7 ends the files)
    files.pop(f"unpool{2 * (len(sizes) - 1)}")
    return files


def write_connection_files(files: dict[str, np.ndarray], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        np.save(folder / f"_{name}.npy", rows)
    return folder


def write_traj_stats(path: Path, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    stats = {"Mean": (0.1 * rng.standard_normal((1, 1, 9))).astype(dtype),
             "Std": (0.5 + rng.random((1, 1, 9))).astype(dtype)}
    with open(path, "wb") as fh:
        pickle.dump(stats, fh)
    return stats


def scaled_target(d: Dims | None = None):
    """The moro target for ``Dims.scaled()`` (or other widths ``d``) with the scaled connection files
    (same depths as the paper, so the same 792 names)."""
    from moro.convert.official import OfficialTarget

    d = d or Dims.scaled()
    config = MoRoConfig(
        name="official-scaled", tokens=TokenConfig(num_tokens=d.tokens, num_codes=d.codes, code_dim=9),
        transformer=TransformerConfig(width=d.width, num_heads=d.heads, window=d.window), clip_frames=8,
        smoother=SmootherConfig(hidden=d.smoother))
    image = ImageEncoderConfig(width=d.width, num_heads=d.heads, backbone_dim=d.vit, backbone_grid=d.grid,
                               backbone_cfg={"img_size": d.image_size, "embed_dim": d.vit, "num_heads": d.vit_heads})
    tokenizer = MeshVQVAEConfig(channels=d.channels, codebook_size=d.codes,
                                hierarchy=HierarchySpec(levels=(0.5, 0.5, 0.5)))
    return OfficialTarget(config=config, image=image, tokenizer=tokenizer, body_shapes=None)


@dataclass
class Release:
    folder: Path
    ckpt: Path  # Lightning-style last.ckpt with optimizer state
    conn_dir: Path
    stats_path: Path
    state: dict  # official name -> tensor (what was saved)
    conn: dict  # {"pool0": rows, ...}
    stats: dict  # {"Mean": (1, 1, 9), "Std": (1, 1, 9)}


def write_release(folder: Path, dims: Dims | None = None, seed: int = 0) -> Release:
    """The 792-key release at scaled widths (small body-model buffers), its connection files and statistics."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = random_connection_files(seed=seed)
    conn_dir = write_connection_files(conn, folder / "smplx_ConnectionMatrices")
    stats = write_traj_stats(folder / "amass_cum_traj.pkl", seed=seed)
    state = release_state(release_shapes(dims or Dims.scaled(), conn, body="small"), seed=seed)
    ckpt = folder / "last.ckpt"
    torch.save({"epoch": 41, "global_step": 1234, "pytorch-lightning_version": "2.5.0", "state_dict": state,
                "loops": {}, "callbacks": {}, "lr_schedulers": [{"last_epoch": 41}],
                "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(4)}}, "param_groups": [{"lr": 1e-4}]}]},
               ckpt)
    return Release(folder, ckpt, conn_dir, folder / "amass_cum_traj.pkl", state, conn, stats)


def stats_vector(stats: dict, key: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(stats[key], dtype=np.float64).reshape(9))
