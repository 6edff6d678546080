"""scripts/cache_transport.py: a packed training cache unpacks to the same labels (body_pose to float16
accuracy) and nearly the same crops, with either codec; a broken video is reported by name."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "cache_transport.py"


@pytest.fixture(scope="module")
def transport():
    spec = importlib.util.spec_from_file_location("cache_transport", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rotations(rng, shape):
    q = rng.normal(size=shape + (4,))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    r = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                  2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                  2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)
    return r.reshape(shape + (3, 3)).astype(np.float32)


def _crops(t, s, phase):
    """Smooth moving pictures (what a crop of a rendered person looks like to a codec)."""
    yy, xx = np.mgrid[0:s, 0:s] / s
    f = np.arange(t)[:, None, None] / t
    r = 128 + 100 * np.sin(6 * xx + 3 * f + phase)
    g = 128 + 100 * np.cos(5 * yy - 2 * f)
    b = 255 * ((xx - 0.5 - 0.2 * np.sin(f * 6)) ** 2 + (yy - 0.5) ** 2 < 0.05)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    names = ["s00000", "s00001", "s00002"]
    for k, n in enumerate(names):
        t = 12 + k
        np.savez(root / f"{n}.npz", ids=rng.integers(0, 512, (t, 96)).astype(np.int16),
                 body_pose=_rotations(rng, (t, 35)), kp2d=rng.normal(300, 50, (t, 22, 2)).astype(np.float32),
                 visibility=rng.random((t, 22)) > 0.3, K=np.eye(3))
        np.save(root / f"{n}.crops.npy", _crops(t, 64, k))
    (root / "manifest.json").write_text(json.dumps({"settings": {"version": 1, "crop": 64}, "sequences": names}))
    return root


@pytest.mark.parametrize("codec, max_mae", [("h264", 4.0), ("mp4v", 8.0)])
def test_round_trip(transport, cache, tmp_path, codec, max_mae):
    packed, out = tmp_path / "packed", tmp_path / "out"
    transport.pack(cache, packed, sequences=2, codec=codec)
    transport.unpack(packed, out, workers=2)
    man = json.loads((out / "manifest.json").read_text())
    assert man["sequences"] == ["s00000", "s00001"] and man["settings"]["sequences"] == 2
    assert man["transport"]["float16"] == ["body_pose"]
    for n in man["sequences"]:
        with np.load(cache / f"{n}.npz") as a, np.load(out / f"{n}.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
                if k == "body_pose":
                    np.testing.assert_allclose(b[k], a[k], atol=5e-4, rtol=0)
                    assert not np.array_equal(b[k], a[k])  # it did travel as float16
                else:
                    np.testing.assert_array_equal(b[k], a[k])
        ca, cb = np.load(cache / f"{n}.crops.npy"), np.load(out / f"{n}.crops.npy")
        assert ca.shape == cb.shape and cb.dtype == np.uint8
        mae = np.abs(ca.astype(int) - cb).mean()
        assert 0 < mae < max_mae, mae
        assert np.abs(ca.astype(int)[..., 2] - cb[..., 2]).mean() < max_mae  # channels kept in order


def test_h264_is_smaller_than_mp4v(transport, cache, tmp_path):
    sizes = {}
    for codec in ("h264", "mp4v"):
        transport.pack(cache, tmp_path / codec, sequences=None, codec=codec)
        sizes[codec] = sum(p.stat().st_size for p in (tmp_path / codec).glob("*.mp4"))
    assert sizes["h264"] < sizes["mp4v"]


def test_broken_video_names_the_file(transport, cache, tmp_path):
    packed = tmp_path / "packed"
    transport.pack(cache, packed, sequences=1)
    (packed / "s00000.mp4").write_bytes((packed / "s00000.mp4").read_bytes()[:200])
    with pytest.raises(SystemExit, match=r"s00000\.mp4: decoded \d+ frames, labels have 12"):
        transport.unpack(packed, tmp_path / "out")
