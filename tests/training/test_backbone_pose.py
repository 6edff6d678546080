"""Backbone pose pretraining (moro.training.backbone_pose, `moro train backbone`): the head, the mirrored
truth, resume == uninterrupted, the written weights, the image stage loading them, a fit beating the mean mesh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from moro.model.backbones import build_backbone
from moro.training.backbone_pose import (BACKBONE_FILE, BackbonePretrainConfig, PoseHead, heldout_error,
                                         heldout_frames, heldout_index, local_vertices, pose_truth, pretrain_backbone)
from moro.training.engine import MODEL_FILE, RunConfig, StageError, load_backbone_weights, train_stage
from moro.training.steps import mirror_vertices
from moro.training.synth_data import SynthTrainData, mirror_permutation

TOKENIZER = str(Path(__file__).resolve().parents[2] / "models" / "tokenizer_tiny.ckpt")


def _backbone():
    return build_backbone("efficientnet_lite0", pretrained=True, img_size=(128, 96))


def _cfg(tmp_path, cache, **kw):
    base = dict(out=str(tmp_path / "bb"), data=str(cache), steps=4, batch=2, warmup=1, log_every=1,
                checkpoint_every=100, eval_every=2, val_frames=8, progress=False)
    base.update(kw)
    return BackbonePretrainConfig(**base)


def test_head_starts_at_the_mean_mesh_and_trains_every_parameter():
    torch.manual_seed(0)
    bb = build_backbone("small_cnn", img_size=(64, 64))
    mean = torch.randn(7, 3)
    head = PoseHead(bb.num_patches, bb.dim, 7, mean)
    x = torch.randn(3, 3, 64, 64)
    assert torch.equal(head(bb(x)), mean.expand(3, 7, 3))
    # the zero last layer passes gradient to itself first; after one step every parameter gets some
    opt = torch.optim.SGD(list(bb.parameters()) + list(head.parameters()), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (head(bb(x)) - torch.randn(3, 7, 3)).abs().mean().backward()
        opt.step()
    params = list(bb.named_parameters()) + list(head.named_parameters())
    missing = [n for n, p in params if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing
    with pytest.raises(ValueError, match="mean_vertices"):
        PoseHead(bb.num_patches, bb.dim, 8, mean)
    # with the rotation output: starts at (mean mesh, identity) and trains every parameter too
    head = PoseHead(bb.num_patches, bb.dim, 7, mean, rotation=True)
    v, R = head(bb(x))
    assert torch.equal(v, mean.expand(3, 7, 3)) and torch.allclose(R, torch.eye(3).expand(3, 3, 3))
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        v, R = head(bb(x))
        ((v - torch.randn(3, 7, 3)).abs().mean() + (R - torch.linalg.qr(torch.randn(3, 3, 3))[0]).abs().mean()).backward()
        opt.step()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in head.parameters())


def test_mirrored_vertices():
    v = torch.randn(3, 5, 3)
    perm = torch.tensor([1, 0, 2, 4, 3])
    flip = torch.tensor([True, False, True])
    m = mirror_vertices(v, flip, perm)
    assert torch.equal(m[1], v[1])
    assert torch.equal(m[0, :, 0], -v[0, perm, 0]) and torch.equal(m[0, :, 1:], v[0, perm, 1:])
    assert torch.equal(mirror_vertices(m, flip, perm), v)  # an involution
    clip = torch.randn(3, 2, 5, 3)  # (b, t, v, 3): the flag broadcasts over the frames
    assert torch.equal(mirror_vertices(clip, flip, perm)[:, 1], mirror_vertices(clip[:, 1], flip, perm))


def test_flipped_crops_get_the_mirrored_body(cache, anny5):
    """The truth of a flipped crop is the mesh of the mirrored pose (the ids_flip tokens encode the same)."""
    data = SynthTrainData(cache)
    perm = torch.from_numpy(mirror_permutation(anny5(anny5.identity_pose(), anny5.zero_betas()).vertices.numpy()))
    s = data.seqs[0]
    pose = torch.from_numpy(s.lab["body_pose"][:2]).float()
    betas = torch.from_numpy(s.lab["betas"]).float()[None].expand(2, -1)
    plain = local_vertices(anny5, pose, betas)
    flipped = local_vertices(anny5, pose, betas, torch.tensor([True, False]), perm)
    assert torch.equal(flipped[1], plain[1])
    assert torch.allclose(flipped[0], mirror_vertices(plain, torch.tensor([True, False]), perm)[0])
    with pytest.raises(ValueError, match="permutation"):
        local_vertices(anny5, pose, betas, torch.tensor([True, False]))


def test_oriented_truth_is_the_camera_mesh_as_the_augmented_crop_shows_it(cache, anny5):
    """pose_truth("oriented") == the root-relative camera-frame mesh, rotated by the crop's roll about the optical
    axis, then mirrored (x -> -x, vertices permuted) where flipped: computed here on the points themselves."""
    data = SynthTrainData(cache)
    perm = torch.from_numpy(mirror_permutation(anny5(anny5.identity_pose(), anny5.zero_betas()).vertices.numpy()))
    s = data.seqs[0]
    idx = [0, 5, 9]
    f = lambda key: torch.from_numpy(np.asarray(s.lab[key][idx], np.float32))[:, None]  # noqa: E731
    batch = {"body_pose": f("body_pose"), "betas": torch.from_numpy(s.lab["betas"]).float()[None].expand(3, -1),
             "root_rot": f("root_rot_cam"), "root_trans": f("root_trans_cam"),
             "roll": torch.tensor([0.3, -0.2, 0.0]), "flip": torch.tensor([True, False, True])}
    local = local_vertices(anny5, batch["body_pose"][:, 0], batch["betas"])
    cam = local @ batch["root_rot"][:, 0].transpose(-1, -2)  # the root-relative mesh in the camera frame
    c, sn = batch["roll"].cos(), batch["roll"].sin()
    x, y = cam[..., 0], cam[..., 1]
    rolled = torch.stack([c[:, None] * x - sn[:, None] * y, sn[:, None] * x + c[:, None] * y, cam[..., 2]], -1)
    want = rolled.clone()
    for k in (0, 2):
        want[k] = rolled[k, perm] * torch.tensor([-1.0, 1.0, 1.0])
    got = pose_truth(anny5, batch, perm, "oriented")
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, pose_truth(anny5, batch, perm, "local"), atol=1e-2)
    assert torch.allclose(pose_truth(anny5, batch, perm, "local"),
                          local_vertices(anny5, batch["body_pose"][:, 0], batch["betas"], batch["flip"], perm))
    # the held-out frames carry the same (unaugmented) target
    _, v = heldout_frames(data, anny5, 80, oriented=True)
    where = heldout_index(data, 80)
    assert torch.allclose(v[where.index((0, 0))], cam[0], atol=1e-5)
    with pytest.raises(ValueError, match="target 'world'"):
        pose_truth(anny5, batch, perm, "world")
    # target "both": zero at the true (local mesh, augmented root rotation); a wrong facing costs the turned term
    from moro.training.backbone_pose import pose_loss
    from moro.training.steps import augment_camera_pose

    R_true = augment_camera_pose(batch["root_rot"], batch["root_trans"], batch["roll"], batch["flip"])[0][:, 0]
    truth_local = pose_truth(anny5, batch, perm, "local")
    assert float(pose_loss((truth_local, R_true), anny5, batch, perm, "both")) < 1e-6
    assert torch.allclose(truth_local @ R_true.transpose(-1, -2), got, atol=1e-5)  # the oriented target, again
    turned = R_true @ torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # the body turned 180 degrees about its y axis
    loss = float(pose_loss((truth_local, turned), anny5, batch, perm, "both"))
    assert loss == pytest.approx(float((truth_local @ turned.transpose(-1, -2) - got).abs().mean()), rel=1e-5)
    assert loss > 0.05
    # the rotation term's weight scales that term alone
    loss3 = float(pose_loss((truth_local, turned), anny5, batch, perm, "both", rotation_weight=3.0))
    assert loss3 == pytest.approx(3.0 * loss, rel=1e-5)
    assert float(pose_loss((truth_local + 0.01, R_true), anny5, batch, perm, "both", rotation_weight=3.0)) == \
        pytest.approx(0.01, rel=1e-4)


def test_heldout_rotation_error_is_the_angle_to_the_crops_root_rotation(cache, anny5):
    from moro.geometry.rotations import rotmat_to_rot6d
    from moro.geometry.rotations import geodesic_distance
    from moro.training.backbone_pose import heldout_rotations

    data = SynthTrainData(cache)
    rots = heldout_rotations(data, 80)
    where = heldout_index(data, 80)
    assert rots.shape == (len(where), 3, 3)
    assert torch.allclose(rots[where.index((1, 5))], torch.from_numpy(data.seqs[1].lab["root_rot_cam"][5]).float())
    images, verts = heldout_frames(data, anny5, 80)
    bb = _backbone()
    head = PoseHead(bb.num_patches, bb.dim, anny5.num_vertices, verts.mean(0), rotation=True)
    # the zero head predicts the identity: its error is each true rotation's own angle
    err = heldout_error(bb, head, images, verts, rotations=rots)
    want = torch.rad2deg(geodesic_distance(torch.eye(3).expand_as(rots).contiguous(), rots))
    assert err["rot_median_deg"] == pytest.approx(float(want.median()), abs=1e-3)
    assert err["rot_over90_pct"] == pytest.approx(float((want > 90).float().mean()) * 100.0)
    # a head that outputs the truth (its 6D bias set to the first frame's rotation) is 0 deg off on that frame
    one = PoseHead(bb.num_patches, bb.dim, anny5.num_vertices, verts.mean(0), rotation=True)
    one.identity6d.copy_(rotmat_to_rot6d(rots[0]))
    assert heldout_error(bb, one, images[:1], verts[:1], rotations=rots[:1])["rot_median_deg"] < 0.1
    assert "rot_median_deg" not in heldout_error(bb, head, images, verts)  # without rotations: the mesh only


def test_resume_repeats_the_uninterrupted_run_and_writes_loadable_weights(tmp_path, cache, anny5):
    torch.manual_seed(0)
    a_bb = _backbone()
    rec = pretrain_backbone(_cfg(tmp_path / "a", cache, val_data=str(cache)), a_bb, anny5, say=lambda s: None)
    torch.manual_seed(0)
    b_bb = _backbone()
    pretrain_backbone(_cfg(tmp_path / "b", cache, val_data=str(cache), stop_after=2), b_bb, anny5, say=lambda s: None)
    b_bb = _backbone()  # a fresh process: everything comes from the state file; data-loader workers build the
    # same batches (each step's batch comes from its own RNG stream), so the weights still match
    pretrain_backbone(_cfg(tmp_path / "b", cache, val_data=str(cache), workers=2), b_bb, anny5, resume=True,
                      say=lambda s: None)
    for (n, p), q in zip(a_bb.state_dict().items(), b_bb.state_dict().values()):
        assert torch.equal(p, q), n
    assert rec["steps_done"] == 4 and not rec["truncated"] and set(rec["heldout"]) == {"v2v_mm", "mean_mesh_v2v_mm",
                                                                                  "rot_median_deg", "rot_over90_pct"}
    assert json.loads((tmp_path / "a" / "bb" / "record.json").read_text())["steps_done"] == 4
    from moro.training.engine import read_metrics

    rows = read_metrics(tmp_path / "a" / "bb" / "metrics.csv")  # held-out rows at steps 2 and 4 (eval_every 2)
    assert [r["step"] for r in rows if "v2v_mm" in r] == [2.0, 4.0] and len(rows) == 4
    assert rows[-1]["v2v_mm"] == pytest.approx(rec["heldout"]["v2v_mm"])
    # the file loads as the backbone's pretrained weights and computes the same tokens
    loaded = build_backbone("efficientnet_lite0", pretrained=str(tmp_path / "a" / "bb" / BACKBONE_FILE), img_size=(128, 96))
    x = torch.randn(2, 3, 128, 96)
    assert torch.allclose(loaded.eval()(x), a_bb.eval()(x), atol=1e-6)
    assert not torch.allclose(_backbone().eval()(x), loaded(x), atol=1e-4)  # it moved from ImageNet
    with pytest.raises(Exception, match="settings changed"):
        pretrain_backbone(_cfg(tmp_path / "b", cache, val_data=str(cache), lr=1e-2), _backbone(), anny5, resume=True,
                          say=lambda s: None)
    with pytest.raises(Exception, match="settings changed"):  # the starting weights are part of the settings
        pretrain_backbone(_cfg(tmp_path / "b", cache, val_data=str(cache), start_weights="other.pt"), _backbone(),
                          anny5, resume=True, say=lambda s: None)


def test_cli_start_weights_must_exist(tmp_path, cache, capsys):
    from moro import cli

    missing = tmp_path / "none.pt"
    args = ["train", "backbone", "--out", str(tmp_path / "bb"), "--data", str(cache), "--tokenizer", TOKENIZER,
            "--start-weights", str(missing)]
    assert cli.main(args) == 2
    assert f"--start-weights {missing}: no such file" in capsys.readouterr().err
    assert not (tmp_path / "bb").exists()


def test_fit_beats_the_mean_mesh_on_its_frames(tmp_path, cache, anny5):
    """Sixty steps on the 80 cached frames: the head's meshes of those frames beat their mean mesh."""
    torch.manual_seed(0)
    bb = _backbone()
    cfg = _cfg(tmp_path, cache, steps=60, batch=8, head_lr=3e-3, lr=3e-4, eval_every=1000, val_frames=80)
    pretrain_backbone(cfg, bb, anny5, say=lambda s: None)
    data = SynthTrainData(cache)
    images, verts = heldout_frames(data, anny5, 80)  # the default target "both": the local mesh (+ a rotation)
    assert images.shape[0] == verts.shape[0] == 80
    assert heldout_index(data, 30) == [(k, i) for k in (0, 1) for i in range(0, 40, 3)]  # every 3rd of 2 x 40
    head_state = torch.load(tmp_path / "bb" / "last.ckpt", weights_only=True)["model"]
    head = PoseHead(bb.num_patches, bb.dim, anny5.num_vertices, head_state["head.mean_vertices"], rotation=True)
    head.load_state_dict({k[5:]: v for k, v in head_state.items() if k.startswith("head.")})
    err = heldout_error(bb, head, images, verts)
    untrained = PoseHead(bb.num_patches, bb.dim, anny5.num_vertices, head_state["head.mean_vertices"], rotation=True)
    base = heldout_error(bb, untrained, images, verts)
    assert base["v2v_mm"] == pytest.approx(base["mean_mesh_v2v_mm"], abs=1e-3)  # zero head = the mean mesh
    assert err["mean_mesh_v2v_mm"] == pytest.approx(base["mean_mesh_v2v_mm"])
    assert err["v2v_mm"] < err["mean_mesh_v2v_mm"], err
    # the training loss falls well below where the zero head (the mean mesh) starts
    from moro.training.engine import read_metrics

    l1 = [r["l1_mm"] for r in read_metrics(tmp_path / "bb" / "metrics.csv")]
    assert len(l1) == 60 and np.mean(l1[-10:]) < 0.8 * np.mean(l1[:5]), l1


def test_image_stage_starts_from_the_pretrained_backbone(tmp_path, cache, anny5):
    bb = _backbone()
    with torch.no_grad():
        for p in bb.parameters():
            p.add_(0.01)
    path = tmp_path / "w.pt"
    torch.save(bb.net.state_dict(), path)
    init = TOKENIZER
    for stage in ("pose_pretrain", "motion_pretrain"):
        r = train_stage(stage, RunConfig(preset="tiny", out=str(tmp_path / "run"), data=str(cache), init=init, workers=0,
                                         progress=False, overrides=dict(steps=1, batch=2, clip_frames=8, warmup=1)), anny5)
        init = str(r.model_path)
    from moro.model import MoRo

    m = MoRo.from_checkpoint(init)
    load_backbone_weights(m, path)
    x = torch.randn(1, 3, 128, 96)
    assert torch.allclose(m.backbone.eval()(x), bb.eval()(x), atol=1e-6)
    with pytest.raises(StageError, match="image_pretrain"):
        load_backbone_weights(m, path, stage="video_train")
    with pytest.raises(StageError, match="no such file"):
        load_backbone_weights(m, tmp_path / "none.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(StageError, match="does not fit"):
        load_backbone_weights(m, tmp_path / "bad.pt")
    cfg = RunConfig(preset="tiny", out=str(tmp_path / "run"), data=str(cache), init=init, workers=0, progress=False,
                    overrides=dict(steps=1, batch=2, warmup=1, backbone_lr=1e-5), backbone_weights=str(path))
    r = train_stage("image_pretrain", cfg, anny5)
    rec = torch.load(r.model_path, map_location="cpu", weights_only=True)["training"]
    assert rec["backbone_weights"] == str(path) and r.model_path.name == MODEL_FILE
    assert rec["recipe"]["backbone_lr"] == 1e-5
    state = torch.load(r.model_path.parent / "last.ckpt", map_location="cpu", weights_only=True)
    groups = state["optimizer"]["param_groups"]  # the rest at the stage's lr, the backbone at its own
    n_backbone = sum(1 for p in m.backbone.parameters())
    assert [(g["initial_lr"], len(g["params"])) for g in groups][1] == (1e-5, n_backbone)
    assert groups[0]["initial_lr"] == rec["recipe"]["lr"]
