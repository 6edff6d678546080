"""Windows: every frame kept exactly once, seams where the config says, stitching in order, per-frame stores."""

import numpy as np
import pytest
import torch

import moro.inference.windows as windows_mod
from moro.inference.decoding import DecodeResult
from moro.inference.store import FrameStore
from moro.inference.windows import WindowConfig, decode_windows, plan_windows

CONFIGS = [WindowConfig(), WindowConfig(50, 12, 6), WindowConfig(10, 4, 0), WindowConfig(10, 4, 4), WindowConfig(8, 0, 0)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.size}-{c.overlap}-{c.drop}")
@pytest.mark.parametrize("t", [1, 7, 8, 10, 11, 49, 50, 51, 88, 499, 500, 501, 880, 881, 1000, 1761, 18000])
def test_kept_ranges_tile_the_video_once(cfg, t):
    plan = plan_windows(t, cfg)
    kept = np.zeros(t, int)
    for w in plan:
        assert 0 <= w.start <= w.keep_start < w.keep_stop <= w.stop <= t
        assert w.stop - w.start == min(cfg.size, t)
        kept[w.keep_start : w.keep_stop] += 1
    assert np.all(kept == 1)
    assert plan[0].keep_start == 0 and plan[-1].keep_stop == t
    for a, b in zip(plan, plan[1:]):
        assert a.keep_stop == b.keep_start and b.start > a.start
        assert a.stop - a.keep_stop == cfg.overlap - cfg.drop  # the earlier window drops overlap - drop
        assert b.keep_start - b.start >= cfg.drop  # the later one at least drop (more if moved back)
    for a, b in zip(plan, plan[1:-1]):
        assert b.start - a.start == cfg.size - cfg.overlap and b.keep_start - b.start == cfg.drop


def test_paper_layout():
    plan = plan_windows(1000)
    assert [tuple(w) for w in plan] == [(0, 500, 0, 440), (380, 880, 440, 820), (500, 1000, 820, 1000)]


def test_bad_configs():
    for kw in ({"size": 10, "overlap": 10}, {"size": 10, "overlap": 4, "drop": 5}, {"size": 0}):
        with pytest.raises(ValueError, match="windows need"):
            WindowConfig(**kw)


def test_decode_windows_stitches_in_order(monkeypatch, tmp_path):
    """Each window's output encodes (window start, absolute frame); the stitched stores keep
    frame f from the window the plan assigns it to."""
    t, n, cfg = 37, 3, WindowConfig(size=12, overlap=6, drop=2, encoder_chunk=5)
    plan = plan_windows(t, cfg)
    with FrameStore.create(tmp_path, "tokens", (1, 2), np.float16) as w:
        w.append(np.arange(t, dtype=np.float16)[:, None, None].repeat(2, -1))
    tokens = FrameStore(tmp_path, "tokens")
    calls = []

    def fake_encode(model, tok, info, chunk):
        calls.append((int(tok[0, 0, 0]), len(tok)))
        frames = torch.from_numpy(tok[:, 0, 0].astype(np.float32))
        return type("Img", (), {"frames": frames, "coarse_traj": frames[None, :, None].expand(1, -1, 9)})()

    def fake_decode(model, image, config):
        f = image.frames  # absolute frame index per row
        start = int(f[0])
        ids = (f[:, None] + 1000 * (start + 1)).long().expand(-1, n)[None]  # window identity in the id
        return DecodeResult(ids, torch.ones(1, len(f), n), torch.ones(1, len(f), n, dtype=torch.long),
                            f[None, :, None].expand(1, -1, 9), f[None, :, None].expand(1, -1, 4), [])

    monkeypatch.setattr(windows_mod, "encode_window", fake_encode)
    monkeypatch.setattr(windows_mod, "decode_clip", fake_decode)
    model = type("M", (), {"config": type("C", (), {"tokens": type("T", (), {"num_tokens": n, "num_codes": 32})()})()})()
    done = []
    stores = decode_windows(model, tokens, np.zeros((t, 3)), tmp_path / "out", cfg, progress=done.append)
    assert [c[0] for c in calls] == [w.start for w in plan] and sum(done) == t
    ids = stores["ids"][:]
    owner = np.concatenate([[w.start] * (w.keep_stop - w.keep_start) for w in plan])
    assert np.array_equal(ids[:, 0], np.arange(t) + 1000 * (owner + 1))
    for name in ("traj", "coarse_traj", "contact"):
        assert np.array_equal(stores[name][:][:, 0], np.arange(t)), name
    assert all(len(s) == t for s in stores.values())


def test_frame_store_round_trip(tmp_path):
    data = np.random.default_rng(0).normal(size=(23, 4, 3)).astype(np.float32)
    w = FrameStore.create(tmp_path, "x", (4, 3), np.float32)
    for a in range(0, 23, 5):
        w.append(data[a : a + 5])
    assert not FrameStore.exists(tmp_path, "x")  # not published before close
    s = w.close()
    assert s.shape == (23, 4, 3) and np.array_equal(s[:], data) and np.array_equal(s[7:12], data[7:12])
    assert np.array_equal(s[-1], data[-1]) and np.array_equal(np.concatenate([c for _, c in s.chunks(6)]), data)
    with pytest.raises(IndexError):
        s[23]


def test_cache_entry_publishes_atomically(tmp_path):
    from moro.inference.store import CacheEntry

    a, b = CacheEntry(tmp_path, "features", "abc"), CacheEntry(tmp_path, "features", "abc")
    wa, wb = a.begin(), b.begin()  # two processes filling the same entry
    (wa / "x.txt").write_text("a")
    (wb / "x.txt").write_text("b")
    assert not a.complete and not (tmp_path / "features-abc").exists()
    b.finish({"frames": 1})
    a.finish()  # too late: b's result stays
    assert a.complete and (a.path / "x.txt").read_text() == "b" and a.info["frames"] == 1
    c = CacheEntry(tmp_path, "features", "def")
    c.begin()
    c.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features-abc"]


def test_frames_alone_equals_one_frame_windows(tiny_model, tmp_path):
    """size = 1 decodes a batch of one-frame clips: the same as decoding each frame as its own window."""
    from moro.inference.decoding import DecodingConfig, decode_clip
    from moro.inference.windows import encode_window

    model, t = tiny_model, 7
    bb = model.backbone
    rng = np.random.default_rng(0)
    with FrameStore.create(tmp_path, "tokens", (bb.num_patches, bb.dim), np.float16) as w:
        w.append(rng.normal(size=(t, bb.num_patches, bb.dim)))
    tokens = FrameStore(tmp_path, "tokens")
    info = np.c_[rng.normal(0, 0.1, (t, 2)), rng.uniform(0.3, 0.6, t)]
    cfg = WindowConfig(size=1, overlap=0, drop=0, encoder_chunk=3)  # batches of 3, 3, 1 frames
    stores = decode_windows(model, tokens, info, tmp_path / "out", cfg, DecodingConfig(3))
    for f in range(t):
        image = encode_window(model, tokens.read(f, f + 1), info[f : f + 1])
        res = decode_clip(model, image, DecodingConfig(3))
        assert np.array_equal(stores["ids"][f], res.ids[0, 0].numpy()), f
        assert np.allclose(stores["traj"][f], res.traj[0, 0].numpy(), atol=1e-4)
        assert np.allclose(stores["coarse_traj"][f], image.coarse_traj[0, 0].numpy(), atol=1e-5)
        assert np.allclose(stores["confidence"][f], res.confidence[0, 0].numpy(), atol=2e-3)  # stored as float16
    assert all(len(s) == t for s in stores.values())
