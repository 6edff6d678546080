"""The authors' checkpoint layout as rules: every key of their ``last.ckpt`` and where it goes in moro.

Source: ``official-checkpoint-layout.md`` (the authors' code at upstream commit ``1f18c4f``),
section 3 (names and shapes, printed from their module) and section 1 (stage subsets). The table
is generated from the rules of that document, not read from a model, so it is a second, independent
reading of the layout: the converter checks it against the moro model it targets.

Official key (prefix)                                   moro key
-----------------------------------------------------   ------------------------------------------
``backbone.model.<vit>``                  (389)         ``backbone.<vit>``
``mask_transformer.dst_former.img_*``     (30)          ``image_encoder.img_*``
``mask_transformer.dst_former.m_*``       (211)         ``motion_encoder.m_*``
``mask_transformer.dst_former.d_*``       (109)         ``decoder.d_*``
``mask_transformer.token_emb.weight``     (1)           ``token_emb.weight``
``smoother.*``                            (4)           ``smoother.*``
``vqvae.fully_conv_ae.{weights,bias,w_weights,p_neighbors}{l}``  ``tokenizer.layers.{l}.{...}``
``vqvae.vq_vae._embedding.weight | _ema_w | _ema_cluster_size``  ``tokenizer.quantizer.codebook | ema_sum | ema_count``
``vqvae.vq_vae.code_count``               (1)           dropped (usage counter of their training)
``bm_neutral.bm.*``                       (14)          dropped (licensed SMPL-X data; never written)

Counts in brackets are the paper's (ViT depth 32, image encoder 2 layers, motion depth 4,
decoder depth 2, 3 tokenizer levels, smoother 2 conv layers): 792 keys in all.
Groups (``KeyRule.group``) are the units of the stage table (section 1).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "KeyRule",
    "OfficialDepths",
    "official_key_table",
    "GROUPS",
    "STAGES",
    "guess_stage",
    "BODY_SHAPES",
    "CONNECTION_SHA256_PREFIXES",
    "tokenizer_layer_file",
    "tokenizer_layer_kinds",
]

VIT = "backbone.model."
DST = "mask_transformer.dst_former."
VQ = "vqvae."
BODY = "bm_neutral.bm."

# key group -> what it is (messages); order = the order of section 1's stage table
GROUPS = {
    "body": "bm_neutral.* (SMPL-X body-model buffers)",
    "tokenizer": "vqvae.* (Mesh-VQ-VAE)",
    "token_emb": "mask_transformer.token_emb.weight",
    "motion": "mask_transformer.dst_former.m_* (motion encoder)",
    "smoother": "smoother.*",
    "backbone": "backbone.model.* (ViT-H)",
    "image_encoder": "mask_transformer.dst_former.img_* (image encoder)",
    "decoder": "mask_transformer.dst_former.d_* (fusion decoder)",
}

# training stage -> groups its checkpoint holds (section 1; the released file is video_train)
STAGES = {
    "pose_pretrain (stage 1)": {"body", "tokenizer", "token_emb", "motion"},
    "motion_pretrain (stage 2)": {"body", "tokenizer", "token_emb", "motion", "smoother"},
    "image_pretrain or video_pretrain (stage 3 or 4)": {"body", "tokenizer", "token_emb", "backbone",
                                                        "image_encoder", "decoder"},
    "video_train (stage 5, the released last.ckpt)": set(GROUPS),
}

# bm_neutral.bm.* of the authors' SMPLXLayer (section 3.1): name -> shape; int64 where noted in the doc
BODY_SHAPES: dict[str, tuple[int, ...]] = {
    "shapedirs": (10475, 3, 10), "expr_dirs": (10475, 3, 10), "faces_tensor": (20908, 3),
    "v_template": (10475, 3), "J_regressor": (55, 10475), "posedirs": (486, 31425), "parents": (55,),
    "lbs_weights": (10475, 55), "left_hand_mean": (45,), "right_hand_mean": (45,), "pose_mean": (165,),
    "lmk_faces_idx": (51,), "lmk_bary_coords": (51, 3), "vertex_joint_selector.extra_joints_idxs": (21,),
}

# sha256 prefixes of the fork's connection files (section 3.2); the authors' Drive copy was never compared
CONNECTION_SHA256_PREFIXES = {
    "_pool0.npy": "d324d19241f5", "_pool1.npy": "9cc91f76843e", "_pool2.npy": "0f73975c0f9b",
    "_pool3.npy": "35380bbf80d0", "_pool4.npy": "b479037f7861", "_pool5.npy": "6dd8ec09ecb2",
    "_pool6.npy": "00706fad25ef", "_pool7.npy": "6dc4cbad8c3e",
    "_unpool0.npy": "0e8a94d9e662", "_unpool1.npy": "11c6cc4acf91", "_unpool2.npy": "f154dd483a36",
    "_unpool3.npy": "6a391bce6496", "_unpool4.npy": "ec92451ace92", "_unpool5.npy": "86687b8de58c",
    "_unpool6.npy": "5a15a17e4ff2", "_unpool7.npy": "8c5f669aed39",
}


@dataclass(frozen=True)
class KeyRule:
    """One key of the authors' state dict."""

    official: str  # their name
    ours: str | None  # moro's state-dict name; None = read, checked and dropped
    group: str  # one of GROUPS


@dataclass(frozen=True)
class OfficialDepths:
    """The repeat counts that fix the key names (not the widths). Paper values as defaults."""

    vit_blocks: int = 32  # backbone.model.blocks.{i}
    image_layers: int = 2  # img_transformer.transformer.layers.{i}
    motion_depth: int = 4  # m_transformer.blocks_{st,ts}.{i}, ts_attn.{i}
    decoder_depth: int = 2  # d_transformer.blocks_{st,ts}.{i}, ts_attn.{i}
    tokenizer_levels: int = 3  # pooling steps L: layers 0 .. 4L+1
    smoother_layers: int = 2  # k-wide convs: net.0, net.2, ..., then the 1x1 conv


def _linear(name: str) -> list[str]:
    return [f"{name}.weight", f"{name}.bias"]


def _vit(depth: int) -> list[str]:
    names = ["pos_embed", *_linear("patch_embed.proj")]
    for i in range(depth):
        b = f"blocks.{i}."
        names += [*_linear(b + "norm1"), *_linear(b + "attn.qkv"), *_linear(b + "attn.proj"),
                  *_linear(b + "norm2"), *_linear(b + "mlp.fc1"), *_linear(b + "mlp.fc2")]
    return names + _linear("last_norm")


def _dst_block() -> list[str]:
    """The 24 sub-keys of one DSTFormer block (section 3.7)."""
    out = []
    for s in "st":
        out += [*_linear(f"norm1_{s}"), *_linear(f"attn_{s}.qkv"), *_linear(f"attn_{s}.proj"),
                *_linear(f"norm2_{s}"), *_linear(f"mlp_{s}.fc1"), *_linear(f"mlp_{s}.fc2")]
    return out


def _dstformer(prefix: str, depth: int) -> list[str]:
    names = [f"{prefix}.blocks_{kind}.{i}.{k}" for kind in ("st", "ts") for i in range(depth) for k in _dst_block()]
    return names + [n for i in range(depth) for n in _linear(f"{prefix}.ts_attn.{i}")]


def _image_encoder(layers: int) -> list[str]:
    names = [*_linear("img_bbox_embed"), *_linear("img_embed")]
    for i in range(layers):
        b = f"img_transformer.transformer.layers.{i}."
        names += [b + "self_attn.in_proj_weight", b + "self_attn.in_proj_bias", *_linear(b + "self_attn.out_proj"),
                  *_linear(b + "linear1"), *_linear(b + "linear2"), *_linear(b + "norm1"), *_linear(b + "norm2")]
    return names + _linear("img_traj_regressor")


def _heads(s: str) -> list[str]:
    return [n for h in ("pose", "traj", "contact") for n in _linear(f"{s}_{h}_regressor")]


def tokenizer_layer_kinds(levels: int) -> dict[int, str]:
    """Layer index l -> "conv" | "pool" for L pooling steps (section 3.2; L = 3: conv 0,2,4,6,7,9,11,13)."""
    kinds = {}
    for i in range(levels):
        kinds[2 * i], kinds[2 * i + 1] = "conv", "pool"
    kinds[2 * levels] = kinds[2 * levels + 1] = "conv"
    for j in range(levels):
        kinds[2 * levels + 2 + 2 * j], kinds[2 * levels + 3 + 2 * j] = "pool", "conv"
    return kinds


def tokenizer_layer_file(layer: int, levels: int) -> str:
    """The connection file whose neighbour lists layer ``l`` uses: ``_pool{l}`` for the encoder
    (l <= 2L), ``_unpool{4L+1-l}`` for the decoder."""
    return f"_pool{layer}.npy" if layer <= 2 * levels else f"_unpool{4 * levels + 1 - layer}.npy"


def official_key_table(depths: OfficialDepths | None = None) -> list[KeyRule]:
    """Every key of the authors' stage-5 state dict, in their groups, with its moro name.

    Args:
        depths: repeat counts (default: the paper's, giving the 792 keys of section 3).
    Returns:
        list of :class:`KeyRule`; official names are unique.
    """
    d = depths or OfficialDepths()
    rules = [KeyRule(BODY + k, None, "body") for k in BODY_SHAPES]
    for l, kind in tokenizer_layer_kinds(d.tokenizer_levels).items():
        names = ("weights", "bias", "w_weights") if kind == "conv" else ("p_neighbors",)
        rules += [KeyRule(f"{VQ}fully_conv_ae.{n}{l}", f"tokenizer.layers.{l}.{n}", "tokenizer") for n in names]
    quantizer = {"_embedding.weight": "codebook", "_ema_w": "ema_sum", "_ema_cluster_size": "ema_count",
                 "code_count": None}
    rules += [KeyRule(f"{VQ}vq_vae.{k}", v and f"tokenizer.quantizer.{v}", "tokenizer") for k, v in quantizer.items()]
    rules.append(KeyRule("mask_transformer.token_emb.weight", "token_emb.weight", "token_emb"))
    motion = ["m_pos_enc", *_linear("m_token_embed"), *_linear("m_traj_embed"),
              *_dstformer("m_transformer", d.motion_depth), *_heads("m")]
    rules += [KeyRule(DST + k, "motion_encoder." + k, "motion") for k in motion]
    smoother = ["alpha", *(f"net.{2 * i}.weight" for i in range(d.smoother_layers + 1))]
    rules += [KeyRule("smoother." + k, "smoother." + k, "smoother") for k in smoother]
    rules += [KeyRule(VIT + k, "backbone." + k, "backbone") for k in _vit(d.vit_blocks)]
    rules += [KeyRule(DST + k, "image_encoder." + k, "image_encoder") for k in _image_encoder(d.image_layers)]
    decoder = ["d_pos_enc", *_linear("d_traj_embed"), *_dstformer("d_transformer", d.decoder_depth), *_heads("d")]
    rules += [KeyRule(DST + k, "decoder." + k, "decoder") for k in decoder]
    names = [r.official for r in rules]
    if len(set(names)) != len(names):  # pragma: no cover - a bug in the rules above
        raise RuntimeError("official key table has duplicate names")
    return rules


def guess_stage(groups_present: set[str]) -> str | None:
    """The training stage whose checkpoint holds exactly these key groups (section 1), or None."""
    for stage, groups in STAGES.items():
        if groups_present == groups or groups_present == groups - {"body"}:  # body keys may be stripped
            return stage
    return None
