"""Tokenizer checkpoints: round trip, and specific errors for another topology or vertex count."""

import pytest
import torch
from tok_meshes import grid, icosphere

from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig
from moro.tokenizer.checkpoint import (
    HierarchyMismatchError,
    TokenizerCheckpointError,
    load_tokenizer,
    save_tokenizer,
)


@pytest.fixture
def saved(tmp_path):
    v, f = grid(24, 24)  # 576 vertices
    model = MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), f, len(v), cache=False)
    model.set_template(torch.from_numpy(v))
    with torch.no_grad():
        model.quantizer.codebook.normal_()
    path = tmp_path / "tok.ckpt"
    save_tokenizer(model, path, body={"model": "test", "topology": "grid24"}, preset="tiny", meta={"command": "x"})
    return model, path, v, f


def test_round_trip_is_exact_and_self_describing(saved):
    model, path, v, f = saved
    loaded = load_tokenizer(path, faces=f, num_vertices=len(v))
    assert not loaded.training and loaded.hierarchy.digest == model.hierarchy.digest
    x = torch.from_numpy(v)[None] * torch.tensor([[[1.1, 0.9, 1.0]]])
    model.eval()
    assert torch.equal(loaded.encode(x)[0], model.encode(x)[0])
    torch.testing.assert_close(loaded(x).reconstruction, model(x).reconstruction, rtol=0, atol=0)
    payload = torch.load(path, weights_only=True)
    assert payload["body"] == {"model": "test", "topology": "grid24", "num_vertices": 576}
    assert all(t.dtype == torch.float32 for t in payload["state_dict"].values() if t.is_floating_point())


def test_another_topology_with_the_same_vertex_count_is_a_hierarchy_mismatch(saved):
    _, path, _, _ = saved
    _, faces = grid(16, 36)  # also 576 vertices, other connectivity
    with pytest.raises(HierarchyMismatchError, match="different topology"):
        load_tokenizer(path, faces=faces)


def test_wrong_vertex_count_names_both_counts(saved):
    _, path, _, _ = saved
    v, f = icosphere(3)  # 642 vertices
    with pytest.raises(TokenizerCheckpointError, match="576 vertices.*has 642"):
        load_tokenizer(path, faces=f)
    with pytest.raises(TokenizerCheckpointError, match="576 vertices.*has 615"):
        load_tokenizer(path, num_vertices=615)
    model = load_tokenizer(path)
    with pytest.raises(ValueError, match=r"\(\.\.\., 576, 3\)"):
        model(torch.zeros(1, 615, 3))


def test_corrupt_or_foreign_files_are_rejected(saved, tmp_path):
    _, path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["hierarchy_digest"] = "0" * 64
    torch.save(payload, tmp_path / "bad.ckpt")
    with pytest.raises(TokenizerCheckpointError, match="corrupt"):
        load_tokenizer(tmp_path / "bad.ckpt")
    torch.save({"format": "moro-train-state"}, tmp_path / "state.ckpt")
    with pytest.raises(TokenizerCheckpointError, match="tokenizer.ckpt"):
        load_tokenizer(tmp_path / "state.ckpt")
    with pytest.raises(FileNotFoundError, match="moro train tokenizer"):
        load_tokenizer(tmp_path / "missing.ckpt")


def test_template_offset_is_subtracted_and_added(saved):
    model, _, v, _ = saved
    plain = MeshVQVAE(MeshVQVAEConfig.from_dict({**model.config.to_dict(), "template_offset": False}), model.hierarchy)
    plain.load_state_dict({k: t for k, t in model.state_dict().items() if k != "template"})
    x = torch.randn(2, len(v), 3)
    t = model.template
    torch.testing.assert_close(model.encode_latents(x), plain.encode_latents(x - t))
    z = torch.randn(2, model.num_tokens, 9)
    torch.testing.assert_close(model.decode_latents(z), plain.decode_latents(z) + t)
    with pytest.raises(ValueError, match="template_offset=True"):
        plain.set_template(t)
