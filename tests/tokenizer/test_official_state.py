"""The authors' tokenizer weights: 34 keys (layout doc 3.2) load into the paper preset; their decoder is reproduced."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tok_meshes import icosphere

from moro.model.summary import official_shape_hierarchy
from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig, build_hierarchy, load_official_hierarchy, save_official_hierarchy
from moro.tokenizer.hierarchy import HierarchySpec
from moro.tokenizer.official import OfficialStateError, load_official_tokenizer_state

# Section 3.2 of official-checkpoint-layout.md, as printed from the authors' module (no prefix).
OFFICIAL_CONVS = {0: (96, 32, 9383, 31), 2: (2048, 64, 2618, 24), 4: (8192, 128, 546, 28), 6: (1152, 9, 87, 34),
                  7: (1152, 128, 87, 34), 9: (8192, 64, 546, 28), 11: (2048, 32, 2618, 24), 13: (96, 3, 9383, 31)}
OFFICIAL_POOLS = {1: (2618, 41), 3: (546, 59), 5: (87, 84), 8: (546, 17), 10: (2618, 15), 12: (9383, 17)}


def official_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for l, (oi, o, p, m) in OFFICIAL_CONVS.items():
        shapes[f"fully_conv_ae.weights{l}"] = (9, oi)
        shapes[f"fully_conv_ae.bias{l}"] = (o,)
        shapes[f"fully_conv_ae.w_weights{l}"] = (p, m, 9)
    for l, shape in OFFICIAL_POOLS.items():
        shapes[f"fully_conv_ae.p_neighbors{l}"] = shape
    shapes.update({"vq_vae._embedding.weight": (512, 9), "vq_vae._ema_w": (512, 9),
                   "vq_vae._ema_cluster_size": (512,), "vq_vae.code_count": (512,)})
    return shapes


def random_state(shapes: dict, prefix: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {prefix + k: 0.1 * torch.randn(s, generator=g) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def paper_model():
    return MeshVQVAE(MeshVQVAEConfig.paper(), official_shape_hierarchy())


def test_exactly_34_keys_in_the_table():
    assert len(official_shapes()) == 34


def test_tokenizer_ckpt_file_loads_into_the_paper_preset(paper_model, tmp_path):
    shapes = official_shapes()
    path = tmp_path / "tokenizer.ckpt"
    torch.save({"state_dict": random_state(shapes, "mesh_vqvae."), "epoch": 3}, path)  # Lightning-style container
    ckpt = torch.load(path, weights_only=True)
    read = load_official_tokenizer_state(paper_model, ckpt)
    assert len(read) == 34 and all(k.startswith("mesh_vqvae.") for k in read)
    sd = ckpt["state_dict"]
    torch.testing.assert_close(paper_model.layers[13].w_weights, sd["mesh_vqvae.fully_conv_ae.w_weights13"], rtol=0, atol=0)
    torch.testing.assert_close(paper_model.layers[8].p_neighbors, sd["mesh_vqvae.fully_conv_ae.p_neighbors8"], rtol=0, atol=0)
    torch.testing.assert_close(paper_model.layers[6].bias, sd["mesh_vqvae.fully_conv_ae.bias6"], rtol=0, atol=0)
    torch.testing.assert_close(paper_model.codebook, sd["mesh_vqvae.vq_vae._embedding.weight"], rtol=0, atol=0)
    torch.testing.assert_close(paper_model.quantizer.ema_sum, sd["mesh_vqvae.vq_vae._ema_w"], rtol=0, atol=0)
    torch.testing.assert_close(paper_model.quantizer.ema_count, sd["mesh_vqvae.vq_vae._ema_cluster_size"], rtol=0, atol=0)
    assert paper_model.quantizer.dead_codes == 0  # imported codebook: nothing due for a restart


def test_last_ckpt_prefix_and_foreign_groups(paper_model):
    sd = random_state(official_shapes(), "vqvae.", seed=1)
    sd["bm_neutral.bm.parents"] = torch.zeros(55, dtype=torch.int64)  # other groups of last.ckpt: ignored
    sd["backbone.model.last_norm.weight"] = torch.ones(1280)
    read = load_official_tokenizer_state(paper_model, sd)
    assert len(read) == 34 and all(k.startswith("vqvae.") for k in read)
    torch.testing.assert_close(paper_model.layers[0].weights, sd["vqvae.fully_conv_ae.weights0"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("mesh_vqvae.fully_conv_ae.bias6"), r"missing 1: mesh_vqvae\.fully_conv_ae\.bias6"),
        (lambda s: s.__setitem__("mesh_vqvae.fully_conv_ae.weight_res3", torch.zeros(64, 64)),
         r"unexpected 1: mesh_vqvae\.fully_conv_ae\.weight_res3"),
        (lambda s: s.__setitem__("mesh_vqvae.fully_conv_ae.w_weights0", torch.zeros(9383, 30, 9)),
         r"w_weights0: file \[9383, 30, 9\], model \[9383, 31, 9\]"),
        (lambda s: s.__setitem__("vqvae.vq_vae._ema_w", torch.zeros(512, 9)), "exactly one of the prefixes"),
    ],
)
def test_bad_states_are_rejected_and_nothing_is_copied(paper_model, edit, message):
    sd = random_state(official_shapes(), "mesh_vqvae.", seed=2)
    edit(sd)
    before = paper_model.layers[0].weights.detach().clone()
    with pytest.raises(OfficialStateError, match=message):
        load_official_tokenizer_state(paper_model, sd)
    assert torch.equal(paper_model.layers[0].weights, before)


def test_a_state_without_tokenizer_keys_names_the_prefixes(paper_model):
    with pytest.raises(OfficialStateError, match="mesh_vqvae"):
        load_official_tokenizer_state(paper_model, {"backbone.model.pos_embed": torch.zeros(1, 193, 1280)})


# ---- the authors' maths, written from the layout doc's section 4 on their files and key names ----

def _rows_to_lists(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.from_numpy(rows[:, 1::2].astype(np.int64))  # (u, m); dists (2::2) are never read
    return ids, torch.from_numpy(np.arange(ids.shape[1])[None, :] < rows[:, :1]).float()  # mask from the count column


def official_layer(x: torch.Tensor, rows: np.ndarray, sd: dict, l: int) -> torch.Tensor:
    """x (b, v_in, c) -> (b, u, o): conv (+ ELU unless l = 13) or pool, with the files' neighbour rows."""
    ids, mask = _rows_to_lists(rows)
    x_pad = torch.cat([x, torch.zeros_like(x[:, :1])], 1)  # padding id = v_in -> zero row
    nbr = x_pad[:, ids]  # (b, u, m, c)
    if f"weights{l}" in sd:
        w, ww, bias = sd[f"weights{l}"], sd[f"w_weights{l}"], sd[f"bias{l}"]
        kernel = torch.einsum("umw,wk->umk", ww * mask[..., None], w).view(*ids.shape, bias.shape[0], x.shape[-1])
        out = torch.einsum("umoi,bumi->buo", kernel, nbr) + bias
        return out if l == 13 else F.elu(out)
    a = sd[f"p_neighbors{l}"].abs() * mask
    a = a / (a.sum(1, keepdim=True) + 1e-8)
    return torch.einsum("um,bumc->buc", a, nbr)


def test_model_reproduces_the_authors_encoder_and_decoder(tmp_path):
    v, f = icosphere(2)  # 162 vertices, the paper's three levels and widths at a test size
    cfg = MeshVQVAEConfig(hierarchy=HierarchySpec(levels=(0.4, 0.375, 0.4)))
    save_official_hierarchy(build_hierarchy(f, len(v), cfg.hierarchy, cache=False), tmp_path / "conn")
    files = {p.stem.lstrip("_"): np.load(p) for p in (tmp_path / "conn").glob("_*.npy")}
    model = MeshVQVAE(cfg, load_official_hierarchy(tmp_path / "conn")).eval()
    shapes = {}
    for k, t in model.state_dict().items():  # official names for this model's shapes (34 keys)
        if k.startswith("layers."):
            _, l, name = k.split(".")
            shapes[f"fully_conv_ae.{name}{l}"] = tuple(t.shape)
    shapes.update({"vq_vae._embedding.weight": (512, 9), "vq_vae._ema_w": (512, 9),
                   "vq_vae._ema_cluster_size": (512,), "vq_vae.code_count": (512,)})
    assert len(shapes) == 34
    sd = random_state(shapes, "mesh_vqvae.", seed=3)
    load_official_tokenizer_state(model, sd)
    plain = {k.split(".", 2)[-1]: t for k, t in sd.items() if ".fully_conv_ae." in k}

    x = torch.from_numpy(v)[None] * (1 + 0.2 * torch.randn(3, 1, 3))  # (3, 162, 3)
    h = x
    for l in range(7):
        h = official_layer(h, files[f"pool{l}"], plain, l)
    codebook = sd["mesh_vqvae.vq_vae._embedding.weight"]
    codes_ref = torch.cdist(h, codebook[None]).argmin(-1)  # (3, n) nearest code by L2
    codes, _ = model.encode(x)
    torch.testing.assert_close(model.encode_latents(x), h, rtol=1e-4, atol=1e-5)
    assert torch.equal(codes, codes_ref)
    h = codebook[codes_ref]
    for l in range(7, 14):
        h = official_layer(h, files[f"unpool{13 - l}"], plain, l)
    torch.testing.assert_close(model.decode_codes(codes_ref), h, rtol=1e-4, atol=1e-5)
