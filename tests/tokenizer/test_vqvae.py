"""Mesh-VQ-VAE: shapes, batching, gradients, presets, and the authors' parameter layout."""

import numpy as np
import pytest
import torch
from tok_meshes import icosphere

from moro.tokenizer.hierarchy import HierarchySpec, build_hierarchy
from moro.tokenizer.neighbours import MeshHierarchy, NeighbourList
from moro.tokenizer.vqvae import PRESETS, MeshVQVAE, MeshVQVAEConfig


@pytest.fixture(scope="module")
def sphere():
    v, f = icosphere(3)
    return torch.from_numpy(v), f


@pytest.fixture(scope="module")
def tiny(sphere):
    v, f = sphere
    torch.manual_seed(0)
    return MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), f, len(v), cache=False)


def meshes(v: torch.Tensor, b: int) -> torch.Tensor:
    """(b, v, 3) randomly scaled copies of the template."""
    return v * (1.0 + 0.2 * torch.rand(b, 1, 3))


def test_shapes_and_token_count(tiny, sphere):
    v, _ = sphere
    assert tiny.hierarchy.level_sizes == (642, 257, 100) and tiny.num_tokens == 100
    x = meshes(v, 4)
    codes, z_q = tiny.eval().encode(x)
    assert codes.shape == (4, 100) and codes.dtype == torch.int64 and z_q.shape == (4, 100, 9)
    assert tiny.decode_codes(codes).shape == (4, 642, 3)
    out = tiny.decode_latents(z_q)
    assert out.shape == (4, 642, 3) and out.dtype == torch.float32
    torch.testing.assert_close(tiny.decode_codes(codes), out)
    # Any leading shape, including none (e.g. (b, t) clips of frames).
    assert tiny.encode(x.view(2, 2, 642, 3))[0].shape == (2, 2, 100)
    assert tiny.encode(x[0])[0].shape == (100,)
    assert tiny.decode_latents(z_q.view(2, 2, 100, 9)).shape == (2, 2, 642, 3)


def test_batched_equals_unbatched(tiny, sphere):
    v, _ = sphere
    x = meshes(v, 3)
    tiny.eval()
    z = tiny.encode_latents(x)
    codes, _ = tiny.encode(x)
    recon = tiny(x).reconstruction
    for i in range(3):
        torch.testing.assert_close(tiny.encode_latents(x[i]), z[i], rtol=1e-5, atol=1e-6)
        assert torch.equal(tiny.encode(x[i : i + 1])[0][0], codes[i])
        torch.testing.assert_close(tiny(x[i : i + 1]).reconstruction[0], recon[i], rtol=1e-5, atol=1e-6)


def test_gradient_reaches_every_trainable_parameter(sphere):
    v, f = sphere
    model = MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), f, len(v), cache=False).train()
    out = model(meshes(v, 2))
    out.loss.backward()
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    params = dict(model.named_parameters())
    assert len(params) == 22  # tiny, 2 levels: 6 convs x (weights, bias, w_weights) + 4 pools x p_neighbors
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_training_step_updates_codebook_only_in_train_mode(tiny, sphere):
    v, _ = sphere
    before = tiny.codebook.clone()
    tiny.eval()(meshes(v, 2))
    assert torch.equal(tiny.codebook, before)
    model = MeshVQVAE(tiny.config, tiny.hierarchy).train()
    start = model.codebook.clone()
    model(meshes(v, 2))
    assert not torch.equal(model.codebook, start)


def test_losses_combine_vertex_error_and_commitment(tiny, sphere):
    v, _ = sphere
    x = meshes(v, 2)
    out = tiny.eval()(x)
    torch.testing.assert_close(out.vertex_error, (out.reconstruction - x).norm(dim=-1).mean())
    torch.testing.assert_close(out.loss, out.vertex_error + out.commit_loss)
    assert 1.0 <= out.perplexity <= 512


def test_config_round_trip_and_presets():
    for name, make in PRESETS.items():
        cfg = make()
        again = MeshVQVAEConfig.from_dict(cfg.to_dict())
        assert again == cfg, name
    paper = MeshVQVAEConfig.paper()
    assert paper.channels == (32, 64, 128) and paper.latent_dim == 9 and paper.num_basis == 9
    assert paper.codebook_size == 512 and paper.num_vertices == 9383
    assert paper.hierarchy.level_sizes(9383) == (9383, 2618, 546, 87)
    with pytest.raises(ValueError, match="one level per width"):
        MeshVQVAEConfig(channels=(8, 8), hierarchy=HierarchySpec(levels=(0.5,)))


def test_mismatched_hierarchy_and_mesh_are_rejected(sphere, tiny):
    v, f = sphere
    h = build_hierarchy(f, len(v), cache=False)
    with pytest.raises(ValueError, match="9383 vertices.*eyeballs"):
        MeshVQVAE(MeshVQVAEConfig.paper(), h)
    with pytest.raises(ValueError, match="one level per channel"):
        MeshVQVAE(MeshVQVAEConfig(channels=(8, 8), hierarchy=HierarchySpec(levels=(0.5, 0.5))), h)
    with pytest.raises(ValueError, match=r"\(\.\.\., 642, 3\)"):
        tiny(torch.zeros(2, 600, 3))
    with pytest.raises(ValueError, match="MASK"):
        tiny.decode_codes(torch.full((1, 100), 512))


def official_shaped_hierarchy(seed: int = 0) -> MeshHierarchy:
    """Random lists with exactly the shapes of the authors' SMPL-X files (section 3.2 of the layout doc)."""
    rng = np.random.default_rng(seed)
    sizes = (9383, 2618, 546, 87)
    pool_slots, unpool_slots = (31, 41, 24, 59, 28, 84, 34), (31, 17, 24, 15, 28, 17, 34)

    def lists(p, n_in, m, self_first):
        ids = rng.integers(0, n_in, size=(p, m))
        if self_first:
            ids[:, 0] = np.arange(p)
        dists = np.ones_like(ids)
        dists[:, 0] = 0
        return NeighbourList(ids, dists, n_in)

    pool, unpool = [], []
    for k in range(7):
        i = k // 2
        n_out = sizes[i + 1] if k % 2 else sizes[i]
        pool.append(lists(n_out, sizes[i], pool_slots[k], True))
        unpool.append(lists(sizes[i], n_out if k % 2 else sizes[i], unpool_slots[k], not k % 2))
    return MeshHierarchy(tuple(pool), tuple(unpool), "official-shaped")


def test_paper_preset_mirrors_the_authors_tokenizer_keys():
    model = MeshVQVAE(MeshVQVAEConfig.paper(), official_shaped_hierarchy())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expect = {}
    convs = {0: (3, 32, 9383, 31), 2: (32, 64, 2618, 24), 4: (64, 128, 546, 28), 6: (128, 9, 87, 34),
             7: (9, 128, 87, 34), 9: (128, 64, 546, 28), 11: (64, 32, 2618, 24), 13: (32, 3, 9383, 31)}
    for l, (c_in, c_out, p, m) in convs.items():
        expect[f"layers.{l}.weights"] = (9, c_out * c_in)
        expect[f"layers.{l}.bias"] = (c_out,)
        expect[f"layers.{l}.w_weights"] = (p, m, 9)
    for l, shape in {1: (2618, 41), 3: (546, 59), 5: (87, 84), 8: (546, 17), 10: (2618, 15), 12: (9383, 17)}.items():
        expect[f"layers.{l}.p_neighbors"] = shape
    expect.update({"quantizer.codebook": (512, 9), "quantizer.ema_sum": (512, 9), "quantizer.ema_count": (512,),
                   "quantizer.steps_unused": (512,)})
    assert shapes == expect  # 34 tensors, like the authors' `mesh_vqvae.*` keys
    total = sum(np.prod(s) for s in shapes.values())
    assert abs(total - 7.27e6) < 0.01e6  # "tokenizer: 7.27M" elements in the layout doc
    codes, _ = model.eval().encode(torch.zeros(1, 9383, 3))
    assert codes.shape == (1, 87) and model.decode_codes(codes).shape == (1, 9383, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(tiny, sphere):
    v, _ = sphere
    x = meshes(v, 2)
    expect = tiny.eval()(x)
    model = MeshVQVAE(tiny.config, tiny.hierarchy)
    model.load_state_dict(tiny.state_dict())
    model.cuda().eval()
    out = model(x.cuda())
    torch.testing.assert_close(out.reconstruction.cpu(), expect.reconstruction, rtol=1e-4, atol=1e-4)
    assert torch.equal(out.codes.cpu(), expect.codes)
    model.train()(x.cuda()).loss.backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters())
