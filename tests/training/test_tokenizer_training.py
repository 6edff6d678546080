"""Tokenizer training: the loss falls, a resumed run repeats an uninterrupted one, bad resumes fail clearly."""

import pytest
import torch
from train_meshes import SphereSource

from moro.tokenizer import HierarchySpec, MeshVQVAE, MeshVQVAEConfig
from moro.tokenizer.checkpoint import load_tokenizer
from moro.training.checkpoint import TrainCheckpointError, load_train_state
from moro.training.tokenizer import STATE_FILE, TOKENIZER_FILE, TokenizerTrainConfig, train_tokenizer


def make_model(source, seed=0, **config):
    torch.manual_seed(seed)
    cfg = MeshVQVAEConfig.tiny()
    for k, v in config.items():
        setattr(cfg, k, v)
    return MeshVQVAE.from_mesh(cfg, source.faces, source.num_vertices)


def config(**kw):
    base = dict(preset="tiny", steps=6, batch=4, lr=3e-3, checkpoint_every=2, template_meshes=16)
    return TokenizerTrainConfig(**{**base, **kw})


def test_training_lowers_the_loss_and_writes_a_loadable_tokenizer(tmp_path):
    src = SphereSource()
    model = make_model(src)
    held_out = SphereSource(seed=9).batch(0, 32).vertices
    with torch.no_grad():
        initial = model.eval()(held_out).vertex_error.item()
    cfg = config(steps=40, batch=8, checkpoint_every=100)
    result = train_tokenizer(model, src, cfg, tmp_path, meta={"command": "test"})
    assert len(result.history) == 40 and result.step == 40
    with torch.no_grad():
        final = model.eval()(held_out).vertex_error.item()
        mean_mesh_error = (held_out - model.template).norm(dim=-1).mean().item()  # predicting the template alone
    assert final < 0.25 * initial, (initial, final)
    assert final < 0.7 * mean_mesh_error, (mean_mesh_error, final)  # it encodes the deformation
    assert result.history[-1]["perplexity"] > 10  # many codes in use
    assert [r["lr"] for r in result.history][19:21] == pytest.approx([3e-3, 6e-4])  # x0.2 at 50 %
    tok = load_tokenizer(tmp_path / TOKENIZER_FILE, faces=src.faces, num_vertices=src.num_vertices)
    x = src.batch(999, 3).vertices
    model.eval()
    torch.testing.assert_close(tok(x).reconstruction, model(x).reconstruction, rtol=0, atol=0)
    assert (tmp_path / TOKENIZER_FILE).stat().st_size < 5e6
    assert load_train_state(tmp_path / STATE_FILE, kind="tokenizer")["step"] == 40


def test_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    src = SphereSource()
    full = train_tokenizer(make_model(src), src, config(), tmp_path / "full")
    first = train_tokenizer(make_model(src), src, config(), tmp_path / "cut", stop_after=3)  # "killed" after step 3
    assert first.step == 3 and first.tokenizer_path is None
    assert load_train_state(tmp_path / "cut" / STATE_FILE)["step"] == 3  # saved on the interrupted step
    torch.manual_seed(123)  # the restored RNG state must win over whatever the new process has
    resumed = train_tokenizer(make_model(src, seed=5), src, config(), tmp_path / "cut", resume=True)
    keys = ("loss", "vertex_mm", "perplexity", "lr", "dead_codes")
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in full.history]
    a = load_tokenizer(tmp_path / "full" / TOKENIZER_FILE)
    b = load_tokenizer(tmp_path / "cut" / TOKENIZER_FILE)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_bad_resumes_name_the_fix(tmp_path):
    src = SphereSource()
    train_tokenizer(make_model(src), src, config(), tmp_path, stop_after=2)
    with pytest.raises(TrainCheckpointError, match="--resume"):
        train_tokenizer(make_model(src), src, config(), tmp_path)
    with pytest.raises(TrainCheckpointError, match=r"batch: 4 -> 8"):
        train_tokenizer(make_model(src), src, config(batch=8), tmp_path, resume=True)
    other = SphereSource()
    other_model = make_model(other, hierarchy=HierarchySpec(levels=(0.5, 0.4)))
    with pytest.raises(TrainCheckpointError, match="hierarchy"):
        train_tokenizer(other_model, other, config(), tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="without --resume"):
        train_tokenizer(make_model(src), src, config(), tmp_path / "empty", resume=True)


def test_source_and_model_vertex_counts_must_agree(tmp_path):
    src, small = SphereSource(), SphereSource(subdivisions=1)
    with pytest.raises(ValueError, match="42-vertex meshes.*expects 162"):
        train_tokenizer(make_model(src), small, config(), tmp_path)
