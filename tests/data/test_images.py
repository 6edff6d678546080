"""Image datasets: BEDLAM real-image labels (SMPL -> SMPL-X via smplfitter) and 4D-Humans tar shards."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from real_fixtures import synthetic_models

from moro.data.formats import DatasetFormatError
from moro.data.images import SmplToSmplx, focal_or_diagonal, iter_webdataset, read_image_labels


def smpl_to_smplx_transfer() -> torch.Tensor:
    """(165, 72) one-hot: SMPL-X-like joint j's vertices <- SMPL-like joint j (head / hands for the extra joints)."""
    m = torch.zeros(165, 72, dtype=torch.float64)
    src = list(range(22)) + [15, 15, 15] + [22] * 15 + [23] * 15
    for j, s in enumerate(src):
        for k in range(3):
            m[3 * j + k, 3 * s + k] = 1.0
    return m


def write_image_labels(path, n=4, seed=0, with_focal=True):
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.2, size=(n, 72))
    pose[:, :3] = [np.pi, 0, 0]
    d = dict(imgname=np.array([f"train2014/COCO_train2014_{i:012d}.jpg" for i in range(n)]), center=rng.uniform(100, 300, (n, 2)),
             scale=rng.uniform(0.5, 2, n), pose=pose, shape=rng.normal(scale=0.5, size=(n, 10)), part=np.zeros((n, 24, 3)),
             openpose=np.zeros((n, 25, 3)), gender=np.array([b"m", b"f", b"m", b"f"][:n], dtype=object))
    if with_focal:
        d.update(global_t=np.tile([0.0, 0.2, 8.0], (n, 1)), focal_l=np.full(n, 5000.0))
    np.savez(path, **d)
    return d


def test_real_image_labels_decoded_and_checked(tmp_path):
    d = write_image_labels(tmp_path / "coco.npz")
    lab = read_image_labels(tmp_path / "coco.npz")
    assert lab["gender"].tolist() == ["m", "f", "m", "f"] and lab["imgname"][1].endswith("000000000001.jpg")
    np.testing.assert_allclose(lab["pose"], d["pose"])
    assert focal_or_diagonal(None, 640, 480) == 800.0 and focal_or_diagonal(5000.0, 640, 480) == 5000.0
    np.savez(tmp_path / "bad.npz", imgname=np.array(["a.jpg"]), center=np.zeros((1, 2)), scale=np.ones(1), pose=np.zeros((1, 69)),
             shape=np.zeros((1, 10)))
    with pytest.raises(DatasetFormatError, match=r"bad.npz: key 'pose' must be \(1, 72\)"):
        read_image_labels(tmp_path / "bad.npz")


def test_smpl_to_smplx_conversion_reproduces_the_body(tmp_path):
    d = write_image_labels(tmp_path / "mpii.npz", n=3)
    smpl, smplx = synthetic_models("smpl", "neutral"), synthetic_models("smplx", "neutral")
    conv = SmplToSmplx(smpl, smplx, smpl_to_smplx_transfer())
    out = conv(d["pose"], d["shape"], d["global_t"])
    assert out["pose"].shape == (3, 165) and out["transl"].shape == (3, 3)
    # independent check: pose the SMPL-X-like model with the converted parameters
    from scipy.spatial.transform import Rotation
    f = out["pose"].shape[0]
    R = torch.tensor(Rotation.from_rotvec(out["pose"].reshape(-1, 3)).as_matrix().reshape(f, 55, 3, 3))
    b = torch.tensor(out["betas"])
    root = smplx.smpl_transl_to_root_trans(torch.tensor(out["transl"]), b)
    j = smplx.joints22(smplx(R[:, 1:], b, R[:, 0], root).vertices).numpy()
    err = np.linalg.norm(j - out["joints22"], axis=-1)  # metres; the two test bodies' meshes differ by ~2 cm
    rest = smplx.joints22(smplx(R[:, 1:] * 0 + torch.eye(3, dtype=R.dtype), b, R[:, 0], root).vertices).numpy()
    assert err.mean() < 0.015 and err.max() < 0.04
    assert err.mean() < 0.2 * np.linalg.norm(rest - out["joints22"], axis=-1).mean()  # the body pose was recovered
    assert (out["fit_error"] < 0.06).all()  # vertex offsets of the two test meshes differ by construction
    with pytest.raises(ValueError, match=r"transfer must be \(165, 72\)"):
        SmplToSmplx(smpl, smplx, torch.zeros(72, 165))


def _shard(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_webdataset_shard_people_and_errors(tmp_path):
    person = dict(keypoints_2d=np.zeros((44, 3), np.float32), keypoints_3d=np.zeros((44, 4), np.float32), center=np.array([100.0, 120.0]),
                  scale=np.array([1.5]), body_pose=np.arange(72, dtype=np.float32) / 100, betas=np.ones(10, np.float32),
                  has_body_pose=np.array(1.0), has_betas=np.array(1.0))
    _shard(tmp_path / "000000.tar", [("000000_0", {"jpg": b"\xff\xd8jpeg", "data.pyd": pickle.dumps([person, person])}),
                                    ("000000_1", {"jpg": b"\xff\xd8x", "data.pyd": pickle.dumps([person])})])
    got = list(iter_webdataset(tmp_path / "000000.tar"))
    assert [s.key for s in got] == ["000000_0", "000000_1"] and [len(s.people) for s in got] == [2, 1]
    np.testing.assert_array_equal(got[0].people[1]["body_pose"], person["body_pose"])
    _shard(tmp_path / "000001.tar", [("k", {"jpg": b"x"})])
    with pytest.raises(DatasetFormatError, match=r"sample 'k' has files \['jpg'\]; expected"):
        list(iter_webdataset(tmp_path / "000001.tar"))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    _shard(tmp_path / "000002.tar", [("e", {"jpg": b"x", "data.pyd": pickle.dumps([Evil()])})])
    with pytest.raises(DatasetFormatError, match="not a readable data pickle"):
        list(iter_webdataset(tmp_path / "000002.tar"))
