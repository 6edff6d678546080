"""``moro prepare images`` end to end: BEDLAM real-image label files and 4D-Humans shards -> prepared SMPL-X rows."""

from __future__ import annotations

import io
import pickle

import numpy as np
from real_fixtures import oracle_joints, synthetic_models
from test_images import _shard, smpl_to_smplx_transfer, write_image_labels

from moro.cli_prepare import prepare
from moro.data.prepared import PreparedDataset


def _jpeg(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _person(seed: int, center, scale, has_pose=1.0) -> dict:
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.2, size=72)
    pose[:3] = [np.pi, 0, 0]  # upright for an OpenCV camera
    return dict(keypoints_2d=rng.uniform(0, 200, (44, 3)).astype(np.float32), keypoints_3d=np.zeros((44, 4), np.float32),
                center=np.array(center, np.float64), scale=np.array(scale, np.float64), body_pose=pose.astype(np.float32),
                betas=rng.normal(scale=0.5, size=10).astype(np.float32), has_body_pose=np.array(has_pose), has_betas=np.array(1.0))


def _images_root(tmp_path):
    root = tmp_path / "images"
    (root / "shards").mkdir(parents=True)
    a, b, c = _person(1, [160.0, 120.0], [1.0, 0.9]), _person(2, [60.0, 100.0], 0.5, has_pose=0.0), _person(3, [300.0, 200.0], 1.5)
    _shard(root / "shards" / "000000.tar", [("000000_0", {"jpg": _jpeg(320, 240), "data.pyd": pickle.dumps([a, b])}),
                                            ("000000_1", {"jpg": _jpeg(640, 400), "data.pyd": pickle.dumps([c])})])
    _shard(root / "shards" / "000001.tar", [("000001_0", {"jpg": _jpeg(320, 240), "data.pyd": pickle.dumps([b])})])
    labels = write_image_labels(root / "coco.npz", n=2)
    np.save(tmp_path / "smpl2smplx.npy", smpl_to_smplx_transfer().numpy())
    return root, (a, c), labels


def test_prepare_images_shards_and_label_files_with_two_workers(tmp_path):
    root, (a, c), labels = _images_root(tmp_path)
    out = tmp_path / "out"
    m = prepare("images", root, out, synthetic_models, opts={"smpl2smplx": str(tmp_path / "smpl2smplx.npy")}, workers=2,
                progress=False)
    assert sorted(m["sequences"]) == ["coco", "shards/000000"]
    assert m["shards"]["shards/000000.tar"] == {"samples": 2, "people": 3, "no_body_pose": 1}
    assert "no person with a body pose" in m["skipped"]["shards/000001.tar"]
    info = m["sequences"]["shards/000000"]
    assert info["frames"] == 2 and info["trans_estimated"] and info["fit_error_mean_m"] < 0.06
    ds = PreparedDataset(out)
    seq = ds["shards/000000"]
    d = seq.data
    np.testing.assert_array_equal(d["trans_estimated"], [1, 1])
    np.testing.assert_array_equal(d["person_index"], [0, 0])
    np.testing.assert_array_equal(d["sample_key"], ["000000_0", "000000_1"])
    np.testing.assert_allclose(d["keypoints_2d"][1], c["keypoints_2d"])
    np.testing.assert_allclose(d["smpl_pose"][0], a["body_pose"], atol=1e-7)
    smpl = synthetic_models("smpl", "neutral")
    for i, (p, (w, h)) in enumerate(zip((a, c), ((320, 240), (640, 400)))):
        s = seq.sample(i)
        assert s.image_size == (w, h) and s.body.model == "smplx/neutral"
        f = np.hypot(w, h)  # no focal length in the shards: the image diagonal
        np.testing.assert_allclose(s.K, [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
        np.testing.assert_allclose(s.box_det, [*p["center"], np.max(p["scale"])], rtol=1e-6)
        # the SMPL-X body reproduces the shard's SMPL pose (relative to the pelvis; the translation is estimated)
        pose = p["body_pose"].astype(np.float64)[None]
        want = oracle_joints(smpl, pose[:, :3], pose[:, 3:].reshape(1, 23, 3), p["betas"].astype(np.float64), np.zeros((1, 3)))[0]
        got = s.joints_cam - s.joints_cam[:1]
        err = np.linalg.norm(got - (want - want[:1]), axis=-1)
        assert err.mean() < 0.02 and err.max() < 0.05
        # the weak-perspective translation puts the body's box on the shard's box
        uv = s.kp2d
        mid = (uv.min(0) + uv.max(0)) / 2
        side = (uv.max(0) - uv.min(0)).max() * 1.2
        np.testing.assert_allclose(mid, p["center"], atol=0.05 * 200 * np.max(p["scale"]))
        np.testing.assert_allclose(side, 200 * np.max(p["scale"]), rtol=0.15)
        assert s.joints_cam[:, 2].min() > 0
    img = seq.sample(1, image=True).image  # decoded from inside the tar
    assert img.shape == (400, 640, 3)
    assert seq.data["image_files"][1] == "shards/000000.tar/000000_1.jpg"
    # the label file went through the same SMPL -> SMPL-X path
    lab = ds["coco"]
    assert lab.num_frames == 2 and lab.data["image_files"][1] == labels["imgname"][1]
    np.testing.assert_allclose(lab.sample(0).K[0, 0], 5000.0)
    # resumable: a rerun does no work and gives the same manifest counts
    m2 = prepare("images", root, out, synthetic_models, opts={"smpl2smplx": str(tmp_path / "smpl2smplx.npy")}, progress=False)
    assert m2["counts"] == m["counts"]
