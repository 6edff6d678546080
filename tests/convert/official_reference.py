"""The authors' forward pass, written from section 4 of official-checkpoint-layout.md on their key names.

Test oracle: plain torch ops on the authors' state dict (``sd``, official names) and their
connection files, no moro model code. Every function states the convention it encodes. Shapes:
b batch, t frames, n pose tokens, p patches, d width.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

DST = "mask_transformer.dst_former."
VIT = "backbone.model."


def lin(x, sd, name):
    return x @ sd[name + ".weight"].T + sd[name + ".bias"]


def layer_norm(x, sd, name, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * sd[name + ".weight"] + sd[name + ".bias"]


def gelu(x):  # exact (erf)
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Interleaved RoPE over the full head: pair i = dims (2i, 2i+1) rotated by pos * base^(-2i/dh), pos = 0..l-1."""
    l, dh = x.shape[-2], x.shape[-1]
    pos = torch.arange(l, dtype=torch.float64)[:, None]
    freq = base ** (-2.0 * torch.arange(dh // 2, dtype=torch.float64) / dh)
    ang = (pos * freq).to(x.dtype)  # (l, dh/2)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * ang.cos() - x1 * ang.sin()
    out[..., 1::2] = x1 * ang.cos() + x0 * ang.sin()
    return out


def mha(x, w_qkv, b_qkv, w_out, b_out, heads, temporal_window=None):
    """Fused qkv rows [q | k | v], heads contiguous; scale dh^-0.5; temporal: RoPE on q, k and band |i-j| <= w."""
    d = x.shape[-1]
    q, k, v = (x @ w_qkv.T + b_qkv).split(d, dim=-1)

    def split(z):  # (..., l, d) -> (..., h, l, dh)
        return z.unflatten(-1, (heads, d // heads)).transpose(-2, -3)

    q, k, v = split(q), split(k), split(v)
    if temporal_window is not None:
        q, k = rope(q), rope(k)
    scores = (q @ k.transpose(-1, -2)) * (d // heads) ** -0.5
    if temporal_window is not None:
        i = torch.arange(x.shape[-2])
        scores = scores.masked_fill((i[:, None] - i[None, :]).abs() > temporal_window, float("-inf"))
    out = scores.softmax(-1) @ v  # (..., h, l, dh)
    return out.transpose(-2, -3).flatten(-2) @ w_out.T + b_out


# --------------------------------------------------------------------------- ViT (HMR2)
def vit(sd, images, heads):
    """(b, 3, H, W) -> (b, p, d): conv k16 s16 pad 2, + pos_embed[1:] + pos_embed[0], pre-norm blocks
    (LN eps 1e-6), final last_norm, row-major tokens."""
    x = F.conv2d(images, sd[VIT + "patch_embed.proj.weight"], sd[VIT + "patch_embed.proj.bias"], stride=16, padding=2)
    x = x.flatten(2).transpose(1, 2)
    pe = sd[VIT + "pos_embed"]
    x = x + pe[:, 1:] + pe[:, :1]
    i = 0
    while f"{VIT}blocks.{i}.norm1.weight" in sd:
        k = f"{VIT}blocks.{i}."
        y = layer_norm(x, sd, k + "norm1", 1e-6)
        x = x + mha(y, sd[k + "attn.qkv.weight"], sd[k + "attn.qkv.bias"], sd[k + "attn.proj.weight"],
                    sd[k + "attn.proj.bias"], heads)
        x = x + lin(gelu(lin(layer_norm(x, sd, k + "norm2", 1e-6), sd, k + "mlp.fc1")), sd, k + "mlp.fc2")
        i += 1
    return layer_norm(x, sd, VIT + "last_norm", 1e-6)


# --------------------------------------------------------------------------- image encoder
def sine_pe(h: int, w: int, dim: int) -> torch.Tensor:
    """(h*w, dim) DETR sine PE, written out element by element: y half first, then x; within a half
    (sin, cos) pairs at 10000^(-2k/half); position (i+1) / (n + 1e-6) * 2 pi; rows row-major."""
    half = dim // 2
    pe = np.zeros((h * w, dim))
    for i in range(h):
        for j in range(w):
            ay, ax = (i + 1) / (h + 1e-6) * 2 * math.pi, (j + 1) / (w + 1e-6) * 2 * math.pi
            for k in range(half // 2):
                f = 10000.0 ** (-2.0 * k / half)
                pe[i * w + j, 2 * k], pe[i * w + j, 2 * k + 1] = math.sin(ay * f), math.cos(ay * f)
                pe[i * w + j, half + 2 * k], pe[i * w + j, half + 2 * k + 1] = math.sin(ax * f), math.cos(ax * f)
    return torch.from_numpy(pe)


def rot6d_to_rotmat(r6):
    """Gram-Schmidt on the two 3-vectors, stacked as ROWS b1, b2, b1 x b2."""
    a1, a2 = r6[..., :3], r6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True)
    return torch.stack((b1, b2, torch.cross(b1, b2, dim=-1)), dim=-2)


def rotmat_to_rot6d(R):
    return torch.cat((R[..., 0, :], R[..., 1, :]), dim=-1)  # [R00 R01 R02 R10 R11 R12]


def image_encoder(sd, tokens, bbox, grid, heads):
    """tokens (b, t, p, d_vit), bbox (b, t, 3) -> patch features (b, t, p, d), coarse traj (b, t, 9)."""
    x = lin(tokens, sd, DST + "img_embed") + sine_pe(*grid, sd[DST + "img_embed.weight"].shape[0]).to(tokens)
    x = torch.cat((x, lin(bbox, sd, DST + "img_bbox_embed")[..., None, :]), dim=-2)  # bbox token LAST
    for i in range(2):  # post-norm nn.TransformerEncoderLayer
        k = f"{DST}img_transformer.transformer.layers.{i}."
        a = mha(x, sd[k + "self_attn.in_proj_weight"], sd[k + "self_attn.in_proj_bias"],
                sd[k + "self_attn.out_proj.weight"], sd[k + "self_attn.out_proj.bias"], heads)
        x = layer_norm(x + a, sd, k + "norm1", 1e-5)
        x = layer_norm(x + lin(gelu(lin(x, sd, k + "linear1")), sd, k + "linear2"), sd, k + "norm2", 1e-5)
    weak = lin(x[..., -1, :], sd, DST + "img_traj_regressor")  # [6D | log s | tx | ty]
    s = weak[..., 6].exp()
    bs = bbox[..., 2] * s + 1e-9
    transl = torch.stack((weak[..., 7] + 2 * bbox[..., 0] / bs, weak[..., 8] + 2 * bbox[..., 1] / bs, 2 / bs), -1)
    return x[..., :-1, :], torch.cat((rotmat_to_rot6d(rot6d_to_rotmat(weak[..., :6])), transl), -1)


# --------------------------------------------------------------------------- DSTFormer, motion encoder, decoder
def _block(x, sd, k, order, heads, window):
    def spatial(x):
        x = x + mha(layer_norm(x, sd, k + "norm1_s", 1e-5), sd[k + "attn_s.qkv.weight"], sd[k + "attn_s.qkv.bias"],
                    sd[k + "attn_s.proj.weight"], sd[k + "attn_s.proj.bias"], heads)
        return x + lin(gelu(lin(layer_norm(x, sd, k + "norm2_s", 1e-5), sd, k + "mlp_s.fc1")), sd, k + "mlp_s.fc2")

    def temporal(x):  # over frames, per token slot
        y = layer_norm(x, sd, k + "norm1_t", 1e-5).transpose(1, 2)  # (b, n, t, d)
        a = mha(y, sd[k + "attn_t.qkv.weight"], sd[k + "attn_t.qkv.bias"], sd[k + "attn_t.proj.weight"],
                sd[k + "attn_t.proj.bias"], heads, temporal_window=window)
        x = x + a.transpose(1, 2)
        return x + lin(gelu(lin(layer_norm(x, sd, k + "norm2_t", 1e-5), sd, k + "mlp_t.fc1")), sd, k + "mlp_t.fc2")

    return temporal(spatial(x)) if order == "st" else spatial(temporal(x))


def dstformer(x, sd, prefix, depth, heads, window):
    for i in range(depth):
        x_st = _block(x, sd, f"{prefix}.blocks_st.{i}.", "st", heads, window)
        x_ts = _block(x, sd, f"{prefix}.blocks_ts.{i}.", "ts", heads, window)
        a = lin(torch.cat((x_st, x_ts), -1), sd, f"{prefix}.ts_attn.{i}").softmax(-1)
        x = a[..., :1] * x_st + a[..., 1:] * x_ts
    return x  # no final norm


def motion_encoder(sd, ids, cano, heads, window):
    """ids (b, t, n) ([MASK] = k), cano (b, t, 9) normalised -> features, logits, cano traj, contact."""
    emb = sd["mask_transformer.token_emb.weight"][ids]
    x = torch.cat((lin(emb, sd, DST + "m_token_embed"), lin(cano, sd, DST + "m_traj_embed")[:, :, None]), 2)
    x = dstformer(x + sd[DST + "m_pos_enc"], sd, DST + "m_transformer", 4, heads, window)
    traj = x[:, :, -1]
    return (x, lin(x[:, :, :-1], sd, DST + "m_pose_regressor"), lin(traj, sd, DST + "m_traj_regressor"),
            lin(traj, sd, DST + "m_contact_regressor"))


def decoder(sd, motion_feats, patches, coarse_traj, heads, window):
    """[87 pose | p image | cano | camera] + d_pos_enc (row n on every image slot) -> logits, traj, contact."""
    n = motion_feats.shape[2] - 1
    pe = sd[DST + "d_pos_enc"][0, 0]
    cam = lin(coarse_traj, sd, DST + "d_traj_embed")[:, :, None]
    x = torch.cat((motion_feats[:, :, :n] + pe[:n], patches + pe[n], motion_feats[:, :, n:] + pe[n + 1],
                   cam + pe[n + 2]), dim=2)
    x = dstformer(x, sd, DST + "d_transformer", 2, heads, window)
    return (lin(x[:, :, :n], sd, DST + "d_pose_regressor"), lin(x[:, :, -1], sd, DST + "d_traj_regressor"),
            lin(x[:, :, -2], sd, DST + "d_contact_regressor"))


def canonical_input(traj, mean, std):
    """(b, t, 9) camera trajectory -> normalised canonical: [6D(R_t^T R_t+1) | (T_t+1 - T_t) as a row times R_t],
    last frame copies the previous one, z-scored with Mean / Std."""
    R, T = rot6d_to_rotmat(traj[..., :6]), traj[..., 6:]
    rel = rotmat_to_rot6d(R[:, :-1].transpose(-1, -2) @ R[:, 1:])
    dT = ((T[:, 1:] - T[:, :-1])[..., None, :] @ R[:, :-1])[..., 0, :]
    cano = torch.cat((rel, dT), -1)
    cano = torch.cat((cano, cano[:, -1:]), 1)
    return (cano - mean) / std


# --------------------------------------------------------------------------- smoother, tokenizer decoder
def smoother(sd, z):
    """(b, t, n, 9), per token slot over time: x + alpha net(x),
    net = conv k5 (replicate pad) - ReLU - conv k5 (replicate pad) - ReLU - conv 1x1, no biases."""
    b, t, n, c = z.shape
    x = z.permute(0, 2, 3, 1).reshape(b * n, c, t)
    h = F.relu(F.conv1d(F.pad(x, (2, 2), mode="replicate"), sd["smoother.net.0.weight"]))
    h = F.relu(F.conv1d(F.pad(h, (2, 2), mode="replicate"), sd["smoother.net.2.weight"]))
    h = F.conv1d(h, sd["smoother.net.4.weight"])
    return z + sd["smoother.alpha"] * h.reshape(b, n, c, t).permute(0, 3, 1, 2)


def mesh_layer(x, rows: np.ndarray, sd, l: int):
    """x (b, v_in, c) -> (b, u, o). Conv: kernel(p, m) = sum_w w_weights[p, m, w] mask[p, m] weights[w] as (out, in);
    out[p] = sum_m kernel(p, m) x[nbr(p, m)] + bias, ELU unless l = 13. Pool: |p_neighbors| mask / (sum + 1e-8)."""
    k = "vqvae.fully_conv_ae."
    ids = torch.from_numpy(rows[:, 1::2].astype(np.int64))  # dist columns (2::2) are never read
    mask = (ids != x.shape[1]).to(x.dtype)
    x_pad = torch.cat((x, torch.zeros_like(x[:, :1])), 1)  # padding id -> zero row
    nbr = x_pad[:, ids]  # (b, u, m, c)
    if f"{k}weights{l}" in sd:
        w, ww, bias = sd[f"{k}weights{l}"], sd[f"{k}w_weights{l}"], sd[f"{k}bias{l}"]
        out_c, in_c = bias.shape[0], x.shape[-1]
        kernel = torch.zeros(*ids.shape, out_c, in_c, dtype=x.dtype)
        for basis in range(w.shape[0]):  # the kernel sum, basis by basis
            kernel += (ww[:, :, basis] * mask)[..., None, None] * w[basis].reshape(out_c, in_c)
        out = torch.einsum("umoi,bumi->buo", kernel, nbr) + bias
        return out if l == 13 else F.elu(out)
    a = sd[f"{k}p_neighbors{l}"].abs() * mask
    return torch.einsum("um,bumc->buc", a / (a.sum(1, keepdim=True) + 1e-8), nbr)


def mesh_from_ids(sd, conn: dict[str, np.ndarray], ids):
    """(b, t, n) code ids -> token_emb -> smoother -> tokenizer layers 7..13 (files _unpool6 .. _unpool0)
    -> (b, t, v, 3)."""
    b, t, n = ids.shape
    h = smoother(sd, sd["mask_transformer.token_emb.weight"][ids]).reshape(b * t, n, -1)
    for l in range(7, 14):
        h = mesh_layer(h, conn[f"unpool{13 - l}"], sd, l)
    return h.reshape(b, t, *h.shape[1:])
