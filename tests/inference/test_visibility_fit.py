"""`moro train visibility` (moro.training.visibility): its validation scores equal decoding with the carry, and
the command's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moro.cli import main


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """Synthetic train (2 sequences) and val (2 sequences) splits, 30 frames at 160 x 90."""
    from moro.synth.splits import plan_split
    from moro.synth.writer import write_split

    root = tmp_path_factory.mktemp("vis-splits")
    write_split(root / "train", plan_split("train", sequences=2, frames=30, width=160, height=90), seed=0)
    write_split(root / "val", plan_split("val", sequences=2, frames=30, width=160, height=90), seed=1)
    return root


def _seqs(root: Path):
    from moro.data.synth import SynthDataset

    ds = SynthDataset(root)
    return [ds[n] for n in ds.names]


def _varied_headings(monkeypatch):
    """A random network gives every frame nearly the same heading, which leaves nothing to carry: turn each
    decoded frame by its own fixed angle (the same in every decoding) so that the carry has work to do."""
    import dataclasses

    import moro.inference.windows as windows
    from moro.inference.heading import turn_about_vertical

    original = windows.decode_clip

    def decode_clip(model, image, config=None):
        res = original(model, image, config)
        tr = res.traj[0].numpy()
        angle = 2.0 * np.sin(0.7 * np.arange(len(tr)))
        return dataclasses.replace(res, traj=torch.from_numpy(turn_about_vertical(tr, angle))[None])

    monkeypatch.setattr(windows, "decode_clip", decode_clip)


def test_validation_scores_equal_decoding_with_the_carry(splits, tiny_checkpoint, body, tmp_path, monkeypatch):
    from moro.bench.accuracy import meshes, sequence_tokens
    from moro.inference.decoding import DecodingConfig
    from moro.inference.heading import VisibilityHead, root_yaw
    from moro.inference.loading import load_model
    from moro.inference.windows import decode_windows
    from moro.training.visibility import validation_scores

    _varied_headings(monkeypatch)
    model = load_model(tiny_checkpoint)
    val = _seqs(splits / "val")
    d = 2 * model.backbone.dim if model.backbone is not None else None
    rng = np.random.default_rng(0)
    head = VisibilityHead(mean=np.zeros(d), scale=np.ones(d), weight=rng.normal(0, 0.02, d), bias=0.3, tau=0.3,
                          sigma=3.0, backbone="x")
    shares = np.concatenate([head.hidden_share(sequence_tokens(model, s, s.num_frames, tmp_path / f"t{i}")[0].read(0, s.num_frames))
                             for i, s in enumerate(val)])
    tau = float(np.median(shares))  # about half the frames trusted
    grid = [(tau, 3.0), (tau, 20.0)]
    base, scores, pred_share, true_share = validation_scores(model, body, head, val, grid, say=lambda m: None)
    np.testing.assert_allclose(pred_share, shares, rtol=1e-6)
    assert true_share.shape == shares.shape

    yaws = []

    def decoded_mpjpe_occ(carry: bool, sigma: float) -> float:
        model.visibility_head = VisibilityHead(head.mean, head.scale, head.weight, head.bias, tau, sigma, "x")
        errs, yaw = [], []
        for i, s in enumerate(val):
            t = s.num_frames
            tokens, info = sequence_tokens(model, s, t, tmp_path / f"c{i}{carry}{sigma}")
            dec = decode_windows(model, tokens, info, tmp_path / f"d{i}{carry}{sigma}",
                                 decoding=DecodingConfig(heading_carry=carry))
            with torch.no_grad():
                v = meshes(model, dec["ids"].read(0, t), dec["traj"].read(0, t).astype(np.float32))
                j = body.joints22(v.to(body.v_template)).numpy().astype(np.float64)
            g = s.labels["joints_cam"][:t].astype(np.float64)
            j, g = j - j[:, 1:3].mean(1, keepdims=True), g - g[:, 1:3].mean(1, keepdims=True)
            occ = ~s.labels["visibility"][:t].astype(bool)
            errs.append(np.linalg.norm(j - g, axis=-1)[occ])
            yaw.append(root_yaw(dec["traj"].read(0, t))[0])
        model.visibility_head = None
        yaws.append(np.concatenate(yaw))
        return 1000 * float(np.concatenate(errs).mean())

    assert base == pytest.approx(decoded_mpjpe_occ(False, 3.0), abs=1e-3)
    for (_, sigma), score in zip(grid, scores):
        assert score == pytest.approx(decoded_mpjpe_occ(True, sigma), abs=1e-3)
    turned = np.degrees(np.abs(np.angle(np.exp(1j * (yaws[1] - yaws[0])))))
    assert turned.max() > 10.0, turned.max()  # the carry turned frames: the comparison is not vacuous


def test_train_visibility_refuses_one_split_for_both(splits, tiny_checkpoint, tmp_path, capsys):
    rc = main(["train", "visibility", "--checkpoint", str(tiny_checkpoint), "--data", str(splits / "train"),
               "--val-data", str(splits / "train"), "--out", str(tmp_path / "m.ckpt")])
    assert rc == 2 and "same split" in capsys.readouterr().err
    assert not (tmp_path / "m.ckpt").exists()


def test_train_visibility_names_a_missing_split(splits, tiny_checkpoint, tmp_path, capsys):
    rc = main(["train", "visibility", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "nope"),
               "--val-data", str(splits / "val"), "--out", str(tmp_path / "m.ckpt")])
    assert rc == 2 and "nope does not exist" in capsys.readouterr().err
