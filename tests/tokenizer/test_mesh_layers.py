"""Mesh conv / pool layers against the authors' formulas, gradients, chunking, parameter layout."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moro.tokenizer import layers as layers_module
from moro.tokenizer.layers import MeshLayer, mesh_conv, mesh_pool, neighbour_mix
from moro.tokenizer.neighbours import NeighbourList


def random_neighbours(num_out: int, num_in: int, m: int, seed: int = 0) -> NeighbourList:
    """Random lists with 1..m used slots per row (self first when num_out <= num_in)."""
    rng = np.random.default_rng(seed)
    ids = np.full((num_out, m), num_in)
    for p in range(num_out):
        k = rng.integers(1, m + 1)
        row = rng.choice(num_in, size=k, replace=False)
        if num_out <= num_in:
            row = np.concatenate([[p], row[row != p]])[:k]
        ids[p, :k] = row
    return NeighbourList(ids, np.where(ids == num_in, -1, 1), num_in)


def official_conv(x_bvi, ids, mask, weights, w_weights, bias):
    """The authors' training-mode formula: per-slot (o, i) kernels, batch-major features."""
    b, v, i = x_bvi.shape
    p, m = ids.shape
    kernels = torch.einsum("pmw,wc->pmc", w_weights * mask[..., None], weights).view(p, m, -1, i)
    nbr = torch.cat([x_bvi, torch.zeros(b, 1, i, dtype=x_bvi.dtype)], 1)[:, ids]
    return torch.einsum("pmoi,bpmi->bpmo", kernels, nbr).sum(2) + bias


def official_pool(x_bvi, ids, mask, p_neighbors):
    b, v, i = x_bvi.shape
    a = p_neighbors.abs() * mask
    a = a / (a.sum(1, keepdim=True) + 1e-8)
    nbr = torch.cat([x_bvi, torch.zeros(b, 1, i, dtype=x_bvi.dtype)], 1)[:, ids]
    return torch.einsum("pm,bpmo->bpo", a, nbr)


@pytest.mark.parametrize("c_in, c_out", [(3, 8), (8, 3), (5, 5)])
@pytest.mark.parametrize("chunked", [False, True])
def test_conv_matches_the_authors_formula(c_in, c_out, chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(layers_module, "_CHUNK_ELEMENTS", 50)  # forces many chunks
    nl = random_neighbours(30, 30, 6)
    ids, mask = torch.from_numpy(nl.ids), torch.from_numpy(nl.mask).float()
    weights, w_weights, bias = torch.randn(4, c_out * c_in), torch.randn(30, 6, 4), torch.randn(c_out)
    x = torch.randn(2, 30, c_in)
    ours = mesh_conv(x.transpose(0, 1), ids, mask, weights, w_weights, bias).transpose(0, 1)
    torch.testing.assert_close(ours, official_conv(x, ids, mask, weights, w_weights, bias), rtol=1e-5, atol=1e-5)


def test_pool_matches_the_authors_formula():
    nl = random_neighbours(12, 30, 7)
    ids, mask = torch.from_numpy(nl.ids), torch.from_numpy(nl.mask).float()
    p_neighbors = torch.randn(12, 7)
    x = torch.randn(3, 30, 4)
    ours = mesh_pool(x.transpose(0, 1), ids, mask, p_neighbors).transpose(0, 1)
    torch.testing.assert_close(ours, official_pool(x, ids, mask, p_neighbors))
    const = mesh_pool(torch.ones(30, 3, 4), ids, mask, p_neighbors)  # convex combination
    torch.testing.assert_close(const, torch.ones(12, 3, 4))


def test_neighbour_mix_gradcheck(monkeypatch):
    monkeypatch.setattr(layers_module, "_CHUNK_ELEMENTS", 20)
    ids = torch.tensor([[0, 2, 4], [1, 4, 4], [3, 0, 1]])
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    coeff = torch.randn(3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: neighbour_mix(a, ids, c), (x, coeff))


def test_layer_gradcheck_conv_and_pool():
    for nl, r, c_out in [(random_neighbours(8, 8, 4), 0.0, 3), (random_neighbours(5, 8, 4), 1.0, 2)]:
        layer = MeshLayer(nl, 2, c_out, num_basis=3, residual_rate=r).double()
        x = torch.randn(8, 2, 2, dtype=torch.float64, requires_grad=True)
        params = tuple(layer.parameters())
        assert torch.autograd.gradcheck(lambda x_, *ps: layer(x_), (x, *params))


def test_mixed_residual_layer_follows_the_mixing_rule():
    nl = random_neighbours(10, 20, 5)
    layer = MeshLayer(nl, 4, 6, num_basis=3, residual_rate=0.3)
    assert {n for n, _ in layer.named_parameters()} == {"weights", "bias", "w_weights", "p_neighbors", "weight_res"}
    x = torch.randn(2, 20, 4)
    ids, mask = torch.from_numpy(nl.ids), torch.from_numpy(nl.mask).float()
    conv = F.elu(official_conv(x, ids, mask, layer.weights, layer.w_weights, layer.bias))
    res = official_pool(x @ layer.weight_res.t(), ids, mask, layer.p_neighbors)
    expect = conv * math.sqrt(0.7) + res * math.sqrt(0.3)
    torch.testing.assert_close(layer(x.transpose(0, 1)).transpose(0, 1), expect)


def test_parameter_names_and_shapes_mirror_the_authors():
    conv = MeshLayer(random_neighbours(30, 30, 6), 3, 32, num_basis=9)
    assert {k: tuple(v.shape) for k, v in conv.state_dict().items()} == {
        "weights": (9, 96),
        "bias": (32,),
        "w_weights": (30, 6, 9),
    }
    pool = MeshLayer(random_neighbours(10, 30, 7), 32, 32, residual_rate=1.0)
    assert {k: tuple(v.shape) for k, v in pool.state_dict().items()} == {"p_neighbors": (10, 7)}
    identity = MeshLayer(random_neighbours(30, 30, 6), 8, 8, residual_rate=1.0)
    assert len(identity.state_dict()) == 0
    x = torch.randn(30, 2, 8)
    assert torch.equal(identity(x), x)


def test_padding_slots_get_no_weight_and_no_gradient():
    nl = random_neighbours(15, 15, 6)
    layer = MeshLayer(nl, 3, 4, num_basis=2)
    layer(torch.randn(15, 2, 3)).sum().backward()
    pad = torch.from_numpy(~nl.mask)
    assert pad.any() and torch.all(layer.w_weights.grad[pad] == 0)
    assert torch.any(layer.w_weights.grad[~pad] != 0)


def test_wrong_input_shape_names_the_level():
    layer = MeshLayer(random_neighbours(10, 20, 5), 4, 4, residual_rate=1.0)
    with pytest.raises(ValueError, match=r"\(20, b, 4\)"):
        layer(torch.randn(2, 20, 4))
    with pytest.raises(ValueError, match="residual_rate"):
        MeshLayer(random_neighbours(10, 20, 5), 4, 4, residual_rate=1.5)
    with pytest.raises(ValueError, match="keeps the channel count"):
        MeshLayer(random_neighbours(10, 20, 5), 4, 8, residual_rate=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_layer_on_cuda_matches_cpu():
    layer = MeshLayer(random_neighbours(40, 40, 8), 3, 16)
    x = torch.randn(40, 4, 3)
    expect = layer(x)
    got = layer.cuda()(x.cuda())
    torch.testing.assert_close(got.cpu(), expect, rtol=1e-4, atol=1e-4)
