"""``moro convert official``: the 792-key table, a full-shape conversion on the meta device, the scaled
release end to end (forward pass), containers, and every kind of bad input with its message."""

import contextlib
import io
import pickle

import numpy as np
import pytest
import torch
from official_release import (BODY_SHAPES, Dims, random_connection_files, release_shapes, release_state,
                              write_connection_files, write_traj_stats)

from moro.cli import main
from moro.convert import (BodyModelMismatchError, OfficialConversionError, TrajectoryStatsNotFoundError,
                          check_smplx_against_reference, convert_official, map_official_state, read_trajectory_stats)
from moro.convert.official import load_connection_matrices
from moro.convert.official_body import body_reference
from moro.convert.official_layout import official_key_table
from moro.model import MoRo


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["convert", "official", *map(str, argv)])
    return rc, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ the table and the paper shapes
def test_official_key_table_equals_the_layouts_792_names():
    table = official_key_table()
    shapes = release_shapes(Dims.paper())
    assert len(table) == len(shapes) == 792
    assert {r.official for r in table} == set(shapes)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 985_496_782  # section 2's element count
    counts = {g: sum(r.group == g for r in table) for g in {r.group for r in table}}
    assert counts == {"body": 14, "tokenizer": 34, "backbone": 389, "motion": 211, "image_encoder": 30,
                      "decoder": 109, "token_emb": 1, "smoother": 4}


def test_official_tokenizer_rows_agree_with_the_tokenizer_loader():
    """Two readings of layout 3.2 (this table, moro.tokenizer.official) give the same 34 names."""
    from moro.model.summary import official_shape_hierarchy
    from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig
    from moro.tokenizer.official import official_key_map

    with torch.device("meta"):
        tok = MeshVQVAE(MeshVQVAEConfig.paper(), official_shape_hierarchy())
    theirs = {f"vqvae.{k}": v and f"tokenizer.{v}" for k, v in official_key_map(tok).items()}
    assert {r.official: r.ours for r in official_key_table() if r.group == "tokenizer"} == theirs


def test_official_full_shape_release_converts_on_meta(tmp_path):
    """All 792 names at their printed shapes (meta tensors: no memory) through the CLI onto the paper preset."""
    from moro.model.summary import build_preset, official_shape_hierarchy
    from moro.tokenizer import save_official_hierarchy

    ints = ("faces_tensor", "parents", "lmk_faces_idx", "extra_joints_idxs")
    state = {k: torch.empty(s, device="meta", dtype=torch.int64 if k.endswith(ints) else torch.float32)
             for k, s in release_shapes(Dims.paper()).items()}
    torch.save({"state_dict": state, "epoch": 0}, tmp_path / "last.ckpt")
    save_official_hierarchy(official_shape_hierarchy(), tmp_path / "conn")
    stats = write_traj_stats(tmp_path / "amass_cum_traj.pkl", dtype=np.float64)
    rc, out, err = run_cli("--ckpt", tmp_path / "last.ckpt", "--connection-matrices", tmp_path / "conn",
                           "--traj-stats", tmp_path / "amass_cum_traj.pkl", "--out", tmp_path / "moro_paper.ckpt")
    assert rc == 0, err
    assert out.strip().splitlines()[-1].startswith("converted=") and "tensors=780" in out
    payload = torch.load(tmp_path / "moro_paper.ckpt", weights_only=True)
    paper, _ = build_preset("paper", "meta")
    assert {k: tuple(v.shape) for k, v in payload["state_dict"].items()} == \
        {k: tuple(v.shape) for k, v in paper.state_dict().items()}
    assert payload["config"]["name"] == "paper" and payload["backbone"] is True
    assert not any("bm_neutral" in k for k in payload["state_dict"])
    np.testing.assert_allclose(payload["state_dict"]["traj_std"].numpy(), stats["Std"].reshape(9), rtol=1e-6)
    assert payload["tokenizer"]["hierarchy"]["pool0"].shape == (9383, 63)


# ------------------------------------------------------------------ the scaled release, end to end
def test_official_scaled_release_converts_and_runs(converted, release):
    report, out = converted
    assert (report.keys_in, report.keys_out, len(report.dropped)) == (792, 780, 15)
    assert any("with optimizer state" in n for n in report.notes)
    model = MoRo.from_checkpoint(out).eval()
    d = Dims.scaled()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(1, 6, 3, *d.image_size, generator=g)
    with torch.no_grad():
        image = model.encode_image(torch.tensor([0.0, 0.1, 0.9]).expand(1, 6, 3), images=images)
        ids = torch.full((1, 6, d.tokens), model.mask_id)
        result = model(ids, model.canonical_input(image.coarse_traj), image)
        mesh = model.mesh_from_ids(result.logits.argmax(-1))
    assert result.logits.shape == (1, 6, d.tokens, d.codes) and mesh.shape == (1, 6, 40, 3)
    assert torch.isfinite(mesh).all() and torch.isfinite(result.decoder.traj).all()


def test_official_output_holds_no_body_model_data(converted, release):
    """The licensed buffers are dropped: not in the state dict, and their bytes nowhere in the file."""
    _, out = converted
    payload = torch.load(out, weights_only=True)
    assert not any(k.startswith("bm") or "bm_neutral" in k for k in payload["state_dict"])
    raw = out.read_bytes()
    for key in ("v_template", "shapedirs", "J_regressor", "lbs_weights"):
        assert release.state[f"bm_neutral.bm.{key}"].numpy().tobytes() not in raw, key
    ref = payload["source"]["body_reference"]
    assert set(ref) == {"model", "num_vertices", "num_faces", "faces_sha256", "v_template_mean",
                        "v_template_absmean", "shapedirs_absmean"}


@pytest.mark.parametrize("container", ["state_dict_only", "bare"])
def test_official_containers_without_optimizer_state(release, target, tmp_path, converted, container):
    obj = {"state_dict": release.state} if container == "state_dict_only" else release.state
    torch.save(obj, tmp_path / "last.ckpt")
    convert_official(tmp_path / "last.ckpt", release.conn_dir, release.stats_path, tmp_path / "o.ckpt", target=target)
    a = torch.load(tmp_path / "o.ckpt", weights_only=True)["state_dict"]
    b = torch.load(converted[1], weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _tripwire(path):  # would run if the pickle were unpickled for real
    open(path, "w").close()
    return path


class Tripwire:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return _tripwire, (self.path,)


def test_official_pickled_objects_are_never_run(release, target, tmp_path):
    wire = tmp_path / "ran"
    torch.save({"state_dict": release.state, "hyper_parameters": Tripwire(wire)}, tmp_path / "last.ckpt")
    report = convert_official(tmp_path / "last.ckpt", release.conn_dir, release.stats_path, tmp_path / "o.ckpt",
                              target=target)
    assert not wire.exists()
    assert any("inert placeholders" in n and "_tripwire" in n for n in report.notes)
    convert_official(tmp_path / "last.ckpt", release.conn_dir, release.stats_path, tmp_path / "o.ckpt",
                     target=target, trust_pickle=True)
    assert wire.exists()  # --trust-pickle really unpickles


# ------------------------------------------------------------------ bad checkpoints
STAGE_GROUPS = {  # section 1: what each stage lacks
    "pose_pretrain": ("smoother.", "backbone.", "mask_transformer.dst_former.img_", "mask_transformer.dst_former.d_"),
    "motion_pretrain": ("backbone.", "mask_transformer.dst_former.img_", "mask_transformer.dst_former.d_"),
    "image_pretrain or video_pretrain": ("smoother.", "mask_transformer.dst_former.m_"),
}


@pytest.mark.parametrize("stage", STAGE_GROUPS)
def test_official_other_stages_are_named(release, target, stage):
    hierarchy, _ = load_connection_matrices(release.conn_dir, target)
    state = {k: v for k, v in release.state.items() if not k.startswith(STAGE_GROUPS[stage])}
    assert len(state) in (260, 264, 577)
    with pytest.raises(OfficialConversionError, match=f"looks like a checkpoint of training stage {stage}"):
        map_official_state(state, target, hierarchy, read_trajectory_stats(release.stats_path))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("mask_transformer.dst_former.d_transformer.blocks_ts.1.mlp_t.fc2.bias"),
         r"missing 1: mask_transformer\.dst_former\.d_transformer\.blocks_ts\.1\.mlp_t\.fc2\.bias"),
        (lambda s: s.__setitem__("mask_transformer.dst_former.m_transformer.final_norm.weight", torch.ones(32)),
         r"unexpected 1: mask_transformer\.dst_former\.m_transformer\.final_norm\.weight"),
        (lambda s: s.__setitem__("mask_transformer.dst_former.m_pos_enc", torch.zeros(1, 1, 7, 32)),
         r"m_pos_enc: checkpoint \[1, 1, 7, 32\], expected \[1, 1, 6, 32\]"),
        (lambda s: s.__setitem__("smoother.alpha", torch.tensor(float("nan"))), r"NaN or inf values in smoother\.alpha"),
        (lambda s: s.__setitem__("smoother.net.0.weight", torch.zeros(8, 9, 5, dtype=torch.int32)),
         r"floating point: smoother\.net\.0\.weight"),
        (lambda s: s.__setitem__("bm_neutral.bm.v_template", None), r"not tensors: bm_neutral\.bm\.v_template"),
    ],
)
def test_official_bad_keys_are_named(release, target, edit, message):
    hierarchy, _ = load_connection_matrices(release.conn_dir, target)
    state = dict(release.state)
    edit(state)
    with pytest.raises(OfficialConversionError, match=message):
        map_official_state(state, target, hierarchy, read_trajectory_stats(release.stats_path))


def test_official_prefixed_keys_get_a_hint(release, target):
    hierarchy, _ = load_connection_matrices(release.conn_dir, target)
    state = {"module." + k: v for k, v in release.state.items()}
    with pytest.raises(OfficialConversionError, match=r"extra leading prefix \('module\.'\)"):
        map_official_state(state, target, hierarchy, read_trajectory_stats(release.stats_path))


def test_official_float64_weights_are_cast(release, target):
    hierarchy, _ = load_connection_matrices(release.conn_dir, target)
    state = {k: v.double() if v.is_floating_point() else v for k, v in release.state.items()}
    out, report = map_official_state(state, target, hierarchy, read_trajectory_stats(release.stats_path))
    assert len(report.cast) == 777 and all(v.dtype == torch.float32 for v in out.values() if v.is_floating_point())


def test_official_other_files_passed_as_ckpt_are_recognised(release, target, tmp_path):
    tok = {"mesh_vqvae." + k[len("vqvae."):]: v for k, v in release.state.items() if k.startswith("vqvae.")}
    torch.save({"state_dict": tok}, tmp_path / "tokenizer.ckpt")
    with pytest.raises(OfficialConversionError, match="tokenizer checkpoint.*--tokenizer"):
        convert_official(tmp_path / "tokenizer.ckpt", release.conn_dir, release.stats_path, tmp_path / "o", target=target)
    vit = {k[len("backbone.model."):]: v for k, v in release.state.items() if k.startswith("backbone.model.")}
    torch.save(vit, tmp_path / "vit.pth")
    with pytest.raises(OfficialConversionError, match="vit_pose_hmr2.pth.*--backbone"):
        convert_official(tmp_path / "vit.pth", release.conn_dir, release.stats_path, tmp_path / "o", target=target)


# ------------------------------------------------------------------ connection matrices and statistics
def test_official_connection_files_that_do_not_fit_the_weights(release, target, tmp_path):
    other = random_connection_files(seed=5)  # same level sizes, other slot counts
    write_connection_files(other, tmp_path / "other")
    with pytest.raises(OfficialConversionError, match=r"connection matrices in .* do not match the tokenizer weights"
                       r".*w_weights0: checkpoint \[40, \d+, 9\], expected \[40, \d+, 9\] \(from _pool0\.npy"):
        convert_official(release.ckpt, tmp_path / "other", release.stats_path, tmp_path / "o", target=target)
    (tmp_path / "other" / "_unpool3.npy").unlink()
    with pytest.raises(OfficialConversionError, match="lacks _unpool3.npy"):
        convert_official(release.ckpt, tmp_path / "other", release.stats_path, tmp_path / "o", target=target)
    with pytest.raises(FileNotFoundError, match="smplx_ConnectionMatrices"):
        convert_official(release.ckpt, tmp_path / "nowhere", release.stats_path, tmp_path / "o", target=target)


def test_official_paper_target_needs_the_9383_vertex_files(release):
    from moro.convert import OfficialTarget

    with pytest.raises(OfficialConversionError, match="mesh of 40 vertices.*9383"):
        load_connection_matrices(release.conn_dir, OfficialTarget.paper())


def test_official_missing_statistics_file_says_where_it_comes_from(release, tmp_path):
    with pytest.raises(TrajectoryStatsNotFoundError, match="DataloaderAMASS.*amass_preprocess/amass_cum_traj.pkl"):
        read_trajectory_stats(tmp_path / "amass_cum_traj.pkl")
    rc, _, err = run_cli("--ckpt", release.ckpt, "--connection-matrices", release.conn_dir,
                         "--traj-stats", tmp_path / "amass_cum_traj.pkl", "--out", tmp_path / "o.ckpt")
    assert rc == 2 and "not in the README's download list" in err and not (tmp_path / "o.ckpt").exists()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_official_statistics_dtypes(tmp_path, dtype):
    stats = write_traj_stats(tmp_path / "s.pkl", dtype=dtype)
    got = read_trajectory_stats(tmp_path / "s.pkl")
    assert got.mean.dtype == torch.float32
    np.testing.assert_allclose(got.std.numpy(), stats["Std"].reshape(9), rtol=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [({"mean": np.zeros((1, 1, 9)), "std": np.ones((1, 1, 9))}, "keys 'Mean' and 'Std'"),
     ({"Mean": np.zeros((1, 1, 6)), "Std": np.ones((1, 1, 6))}, "9 numbers"),
     ({"Mean": np.zeros((1, 1, 9)), "Std": np.zeros((1, 1, 9))}, "std must be strictly positive"),
     ({"Mean": np.zeros((1, 1, 9)), "Std": np.ones((1, 1, 9)), "x": Tripwire("/nonexistent")}, "--trust-pickle")],
)
def test_official_bad_statistics_files(tmp_path, content, message):
    with open(tmp_path / "s.pkl", "wb") as fh:
        pickle.dump(content, fh)
    with pytest.raises(OfficialConversionError, match=message):
        read_trajectory_stats(tmp_path / "s.pkl")


# ------------------------------------------------------------------ optional inputs: tokenizer, backbone, SMPL-X
def test_official_tokenizer_and_backbone_files_are_checked(release, target, tmp_path):
    tok = {"mesh_vqvae." + k[len("vqvae."):]: v.clone() for k, v in release.state.items() if k.startswith("vqvae.")}
    torch.save({"state_dict": tok, "epoch": 9}, tmp_path / "tokenizer.ckpt")
    vit = {k[len("backbone.model."):]: v + 0.01 for k, v in release.state.items() if k.startswith("backbone.model.")}
    torch.save(vit, tmp_path / "vit_pose_hmr2.pth")
    report = convert_official(release.ckpt, release.conn_dir, release.stats_path, tmp_path / "o.ckpt", target=target,
                              tokenizer=tmp_path / "tokenizer.ckpt", backbone=tmp_path / "vit_pose_hmr2.pth")
    assert any("identical to last.ckpt's vqvae" in n for n in report.notes)
    assert any("vit_pose_hmr2.pth: 389 keys fit" in n for n in report.notes)
    tok["mesh_vqvae.fully_conv_ae.bias13"] = tok["mesh_vqvae.fully_conv_ae.bias13"] + 1.0
    del tok["mesh_vqvae.vq_vae.code_count"]
    torch.save({"state_dict": tok}, tmp_path / "tokenizer.ckpt")
    with pytest.raises(OfficialConversionError, match=r"missing 1: mesh_vqvae\.vq_vae\.code_count"):
        convert_official(release.ckpt, release.conn_dir, release.stats_path, tmp_path / "o.ckpt", target=target,
                         tokenizer=tmp_path / "tokenizer.ckpt")


def _smplx_arrays(release, shapedirs_bases: int = 10) -> dict:
    s = release.state
    sd = s["bm_neutral.bm.shapedirs"].double().numpy()
    if shapedirs_bases > sd.shape[-1]:
        sd = np.concatenate([sd, np.zeros((*sd.shape[:2], shapedirs_bases - sd.shape[-1]))], -1)
    return {"v_template": s["bm_neutral.bm.v_template"].double().numpy(),
            "faces": s["bm_neutral.bm.faces_tensor"].numpy(), "shapedirs": sd}


def test_official_smplx_version_check(release):
    reference = body_reference(release.state)
    check_smplx_against_reference(_smplx_arrays(release, 300), reference)  # more bases, same first ones: fine
    arrays = _smplx_arrays(release)
    arrays["faces"] = arrays["faces"][::-1].copy()
    with pytest.raises(BodyModelMismatchError, match="another mesh topology"):
        check_smplx_against_reference(arrays, reference)
    arrays = _smplx_arrays(release)
    arrays["v_template"] = arrays["v_template"] + 0.001
    with pytest.raises(BodyModelMismatchError, match="another gender or release"):
        check_smplx_against_reference(arrays, reference)
    arrays = _smplx_arrays(release)
    arrays["shapedirs"] = arrays["shapedirs"] * 1.01
    with pytest.raises(BodyModelMismatchError, match="different SMPL-X version"):
        check_smplx_against_reference(arrays, reference)


def test_official_body_shapes_of_another_model_are_refused(release, target):
    from dataclasses import replace

    hierarchy, _ = load_connection_matrices(release.conn_dir, target)
    strict = replace(target, body_shapes=dict(BODY_SHAPES))  # the paper's SMPL-X shapes; the release has small ones
    with pytest.raises(OfficialConversionError, match="not the SMPL-X layout"):
        map_official_state(release.state, strict, hierarchy, read_trajectory_stats(release.stats_path))


def test_official_release_state_seeded():
    """The synthetic release is reproducible (seeded), so failures are too."""
    shapes = release_shapes(Dims.scaled(), random_connection_files(), body=None)
    a, b = release_state(shapes, seed=3), release_state(shapes, seed=3)
    assert len(a) == 778 and all(torch.equal(a[k], b[k]) for k in a)
