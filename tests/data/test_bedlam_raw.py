"""BEDLAM raw render layout (be_seq.csv, camera csv, motion_seq.npz, png frames): conventions, closeups, prepare."""

from __future__ import annotations

import numpy as np
import pytest
from real_fixtures import (
    bedlam_camera, bedlam_raw_motion, bedlam_raw_oracle, oracle_joints, rot, synthetic_models, write_bedlam_raw,
    write_bedlam_scene,
)
from scipy.spatial.transform import Rotation

from moro.data.bedlam import bedlam_clip, read_bedlam_labels
from moro.data.bedlam_raw import intrinsics, read_be_seq, read_bedlam_raw
from moro.data.formats import DatasetFormatError

FOLDER = "20221010_3_1000_batch01hand"
CLOSEUP = "20221019_3-8_250_highbmihand_closeup_suburb_a"
BODY = "rp_aaron_posed_002_1000"
PLACE, YAW = (450.0, 60.0, 0.0), 200.0


def _oracle_cam(body, motion, cam, frames, start, place, yaw, closeup=False):
    """(t, 22, 3) camera-frame joints written out independently (scipy rotations, BodyModel.forward)."""
    out = []
    for f in frames:
        R, t = bedlam_raw_oracle(cam, f, place, yaw, closeup)
        p = motion["poses"][start + f: start + f + 1]
        out.append(oracle_joints(body, p[:, :3], p[:, 3:].reshape(1, 54, 3), motion["betas"][:10],
                                 motion["trans"][start + f: start + f + 1], R, t)[0])
    return np.stack(out)


def _processed_from_same_params(body, motion, cam, frames, start, place, yaw, closeup=False) -> dict:
    """Processed-label rows (pose_cam, trans_cam, cam_ext, cam_int) built from the same parameters with
    BEDLAM's label conventions, in the test (scipy; j0 = the FK pelvis of the unposed, untranslated body)."""
    zeros = np.zeros((1, 3))
    j0 = oracle_joints(body, zeros, np.zeros((1, 54, 3)), motion["betas"][:10], zeros)[0, 0]
    rows = {k: [] for k in ("pose_cam", "trans_cam", "cam_ext", "cam_int")}
    for f in frames:
        R, t = bedlam_raw_oracle(cam, f, place, yaw, closeup)
        r = -cam["roll"][f] + (90.0 if closeup else 0.0)
        ext = np.eye(4)
        ext[:3, :3] = Rotation.from_euler("ZX", [r, -cam["pitch"][f]], degrees=True).as_matrix()
        ext[:3, 3] = t
        p = motion["poses"][start + f].copy()
        p[:3] = Rotation.from_matrix(R @ rot(p[:3])).as_rotvec()
        rows["pose_cam"].append(p)
        rows["trans_cam"].append(R @ (motion["trans"][start + f] + j0) - j0)
        rows["cam_ext"].append(ext)
        w, h, sw, sh = (720, 1280, 20.25, 36.0) if closeup else (1280, 720, 36.0, 20.25)
        fm = cam["focal_length"][f]
        rows["cam_int"].append(np.array([[fm * w / sw, 0, w / 2], [0, fm * h / sh, h / 2], [0, 0, 1.0]]))
    return {k: np.array(v) for k, v in rows.items()} | {"shape": motion["betas"]}


def test_bedlam_raw_matches_processed_labels_and_independent_oracle(tmp_path):
    n, start = 12, 5
    motion = bedlam_raw_motion(n + start + 3, seed=3)
    cam = bedlam_camera(n)  # moving: drifts and pans, so every frame has its own extrinsics
    write_bedlam_raw(tmp_path, FOLDER, {"seq_000007": {"camera": cam, "bodies": [(BODY, PLACE, YAW, start, motion)]}},
                     png_frames={"seq_000007": [f for f in range(n) if f != 4]})  # frame 4's png is missing
    (raw,) = read_bedlam_raw(tmp_path, FOLDER, synthetic_models)
    frames = [f for f in range(n) if f != 4]
    np.testing.assert_array_equal(raw.frame_ids, frames)
    assert raw.name == f"{FOLDER}/seq_000007/p0" and raw.person == BODY and raw.gender == "neutral"
    assert raw.subject_gender == "female" and raw.moving_camera
    assert raw.image_files[0] == f"{FOLDER}/png/seq_000007/seq_000007_0000.png"
    clip = bedlam_clip(raw, synthetic_models)
    body = synthetic_models("smplx", "neutral")
    want = _oracle_cam(body, motion, cam, frames, start, PLACE, YAW)
    np.testing.assert_allclose(clip.joints_cam, want, atol=1e-5)
    assert (want[..., 2] > 3.0).all() and clip.in_image.all()  # in front of the camera, inside the image
    # intrinsics: focal mm / sensor mm * pixels, principal point at the image centre
    f_px = 40.0 / 36.0 * 1280
    np.testing.assert_allclose(clip.K, [[f_px, 0, 640], [0, 40.0 / 20.25 * 720, 360], [0, 0, 1]])
    np.testing.assert_allclose(f_px, 40.0 / 20.25 * 720)  # square pixels
    # the processed-label reader, given labels built from the same parameters, agrees
    lab = _processed_from_same_params(body, motion, cam, frames, start, PLACE, YAW)
    write_bedlam_scene(tmp_path / "labels" / f"{FOLDER}.npz", {"seq_000007": {"a": (frames, lab)}}, gender=b"female")
    (proc,) = read_bedlam_labels(tmp_path / "labels" / f"{FOLDER}.npz")
    pclip = bedlam_clip(proc, synthetic_models)
    assert proc.name == raw.name and pclip.body.model == clip.body.model == "smplx/neutral"
    np.testing.assert_allclose(pclip.joints_cam, clip.joints_cam, atol=1e-5)
    np.testing.assert_allclose(pclip.kp2d, clip.kp2d, atol=1e-3)
    np.testing.assert_allclose(pclip.K, clip.K)
    np.testing.assert_allclose(pclip.T_w2c, clip.T_w2c, atol=1e-9)
    np.testing.assert_allclose(pclip.joints_world, clip.joints_world, atol=1e-5)
    np.testing.assert_array_equal(pclip.image_files, clip.image_files)
    # world is Y up: with a static camera, the head is above the pelvis and the feet are near y = 0
    (static,) = read_bedlam_raw(_static_root(tmp_path, motion, start), FOLDER, synthetic_models)
    sclip = bedlam_clip(static, synthetic_models)
    jw = sclip.joints_world
    assert (jw[:, 15, 1] > jw[:, 0, 1] + 0.3).all() and abs(jw[..., 1].min()) < 0.1
    assert not static.moving_camera


def _static_root(tmp_path, motion, start):
    root = tmp_path / "static"
    write_bedlam_raw(root, FOLDER, {"seq_000007": {"camera": bedlam_camera(6, move=False), "bodies": [(BODY, PLACE, YAW, start, motion)]}})
    return root


def test_bedlam_raw_closeup_rotated_upright_intrinsics_and_image(tmp_path):
    n = 4
    motion = bedlam_raw_motion(n, seed=5)
    cam = bedlam_camera(n, z=100.0, yaw=0.0, pitch=0.0, roll=90.0, focal=30.0, move=False)
    place = (300.0, 0.0, 0.0)
    write_bedlam_raw(tmp_path, CLOSEUP, {"seq_000000": {"camera": cam, "bodies": [("rp_emma_posed_008_0042", place, 270.0, 0, motion)]}})
    (s,) = read_bedlam_raw(tmp_path, CLOSEUP, synthetic_models)
    clip = bedlam_clip(s, synthetic_models)
    assert clip.image_size == (720, 1280)
    np.testing.assert_allclose(clip.K, intrinsics(30.0, closeup=True))
    np.testing.assert_allclose(clip.K, [[30 / 20.25 * 720, 0, 360], [0, 30 / 36 * 1280, 640], [0, 0, 1]])
    want = _oracle_cam(synthetic_models("smplx", "neutral"), motion, cam, range(n), 0, place, 270.0, closeup=True)
    np.testing.assert_allclose(clip.joints_cam, want, atol=1e-5)
    # roll 90 in the csv + 90 for the rotated storage = an upright person in the upright (720 x 1280) image
    assert (clip.kp2d[:, 15, 1] < clip.kp2d[:, 0, 1] - 50).all() and clip.in_image.all()
    # the stored png is 1280 x 720; reading it with the prepared rotation turns it clockwise
    from moro.data.prepared import read_image

    img = read_image(tmp_path / s.image_files[0], rot90=1)
    assert img.shape == (1280, 720, 3) and tuple(img[5, 715]) == (255, 0, 0) and tuple(img[5, 5]) == (120, 120, 120)


def test_bedlam_be_seq_parsing_and_bad_raw_input_names_the_file(tmp_path):
    motion = bedlam_raw_motion(8, seed=1)
    cam = bedlam_camera(6)
    write_bedlam_raw(tmp_path, FOLDER, {"seq_000001": {"camera": cam, "bodies": [(BODY, PLACE, YAW, 0, motion),
                                                                               ("rp_ben_posed_005_0099", (500, -40, 0), 10.0, 4, motion)]},
                                        "seq_000002": {"camera": cam, "bodies": [(BODY, PLACE, YAW, 0, motion)]}})
    seqs = read_be_seq(tmp_path / FOLDER / "be_seq.csv")
    assert list(seqs) == ["seq_000001", "seq_000002"] and [b.body for b in seqs["seq_000001"]] == [BODY, "rp_ben_posed_005_0099"]
    b = seqs["seq_000001"][1]
    assert (b.subject, b.motion_id, b.start_frame, b.yaw_deg) == ("rp_ben_posed_005", "0099", 4, 10.0)
    got = read_bedlam_raw(tmp_path, FOLDER, synthetic_models, sequences=["seq_000001"])
    assert [s.name for s in got] == [f"{FOLDER}/seq_000001/p0", f"{FOLDER}/seq_000001/p1"]
    np.testing.assert_array_equal(got[1].frame_ids, [0, 1, 2, 3])  # start 4 + frame < 8 motion frames
    (tmp_path / "neutral_ground_truth_motioninfo" / "rp_ben_posed_005" / "0099" / "motion_seq.npz").unlink()
    with pytest.raises(DatasetFormatError, match=r"rp_ben_posed_005/0099/motion_seq.npz not found"):
        read_bedlam_raw(tmp_path, FOLDER, synthetic_models, sequences=["seq_000001"])
    path = tmp_path / FOLDER / "ground_truth" / "camera" / "seq_000002_camera.csv"
    path.write_text("name,x,y,z,yaw,pitch,roll\nseq_000002_0000,0,0,0,0,0,0\n")
    with pytest.raises(DatasetFormatError, match=r"seq_000002_camera.csv: missing column\(s\) \['focal_length'\]"):
        read_bedlam_raw(tmp_path, FOLDER, synthetic_models, sequences=["seq_000002"])


def test_prepare_bedlam_raw_layout_auto_detected_with_two_workers(tmp_path):
    from moro.cli_prepare import prepare
    from moro.data.prepared import PreparedDataset

    src = tmp_path / "raw"
    n = 64
    motion = bedlam_raw_motion(n + 2, seed=2)
    write_bedlam_raw(src, FOLDER, {"seq_000003": {"camera": bedlam_camera(n, move=False), "bodies": [(BODY, PLACE, YAW, 0, motion)]},
                                   "seq_000004": {"camera": bedlam_camera(3), "bodies": [("rp_x_posed_001_0001", PLACE, YAW, 0, motion)]}})
    (src / "neutral_ground_truth_motioninfo" / "rp_x_posed_001" / "0001" / "motion_seq.npz").unlink()  # a bad sequence
    m = prepare("bedlam", src, tmp_path / "out", synthetic_models, progress=False, workers=2)
    assert m["counts"]["items"] == 2 and m["counts"]["skipped"] == 1
    assert "rp_x_posed_001/0001/motion_seq.npz not found" in m["skipped"][f"{FOLDER}/seq_000004"]
    info = m["sequences"][f"{FOLDER}/seq_000003/p0"]
    assert info["clips"] == [[0, 60]] and info["frames"] == n and info["person"] == BODY and not info["moving_camera"]
    seq = PreparedDataset(tmp_path / "out")[f"{FOLDER}/seq_000003/p0"]
    clip = seq.clip(0, 60)
    ref = bedlam_clip(read_bedlam_raw(src, FOLDER, synthetic_models, sequences=["seq_000003"])[0], synthetic_models)
    np.testing.assert_allclose(clip.joints_cam, ref.joints_cam[:60], atol=1e-6)
    assert int(seq.data["image_rot90"]) == 0 and clip.image_size == (1280, 720)
    # forcing the processed-label layout on a raw root finds no label files
    m2 = prepare("bedlam", src, tmp_path / "out2", synthetic_models, progress=False, opts={"bedlam_layout": "labels"})
    assert m2["counts"]["sequences"] == 0
