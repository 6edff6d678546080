"""Network meshes for the fit: spread-out frames decoded in one batch equal each frame decoded alone."""

import numpy as np
import torch

from moro.inference.postprocess import camera_meshes, smoother_margin
from moro.inference.store import FrameStore


def _stores(model, tmp_path, t=40):
    rng = np.random.default_rng(0)
    n, k = model.config.tokens.num_tokens, model.config.tokens.num_codes
    ids = FrameStore.create(tmp_path, "ids", (n,), np.int16)
    ids.append(rng.integers(0, k, (t, n)).astype(np.int16))
    traj = FrameStore.create(tmp_path, "traj", (9,), np.float32)
    a = rng.uniform(-np.pi, np.pi, t)
    rows = np.stack([np.cos(a), np.zeros(t), np.sin(a), np.zeros(t), np.ones(t), np.zeros(t)], 1)
    traj.append(np.concatenate([rows, rng.normal(0, 1, (t, 3)) + [0, 0, 5]], 1).astype(np.float32))
    return ids.close(), traj.close()


def test_camera_meshes_batched_equals_one_by_one(tiny_model, tmp_path):
    model = tiny_model.eval()
    ids, traj = _stores(model, tmp_path)
    m = smoother_margin(model)
    frames = np.array([0, 1, 2, 2 * m + 9, 4 * m + 20, 39])  # runs of nearby frames and isolated ones
    batched = camera_meshes(model, ids, traj, frames)
    for i, f in enumerate(frames):
        # alone, a frame's smoother window is the same (its neighbours are read from the store)
        torch.testing.assert_close(batched[i], camera_meshes(model, ids, traj, np.array([f]))[0], atol=1e-5, rtol=0)
    assert batched.shape == (len(frames), model.tokenizer.decode_latents(
        model.token_emb(torch.zeros(1, model.config.tokens.num_tokens, dtype=torch.long))).shape[1], 3)


def test_token_joint_weights_are_cached_per_weights(tiny_model, body):
    from moro.inference.postprocess import _token_joint_weights, token_joint_weights

    model = tiny_model.eval()
    reg = body.joints22_regressor
    first = token_joint_weights(model, reg)
    torch.testing.assert_close(first, _token_joint_weights(model, reg), atol=0, rtol=0)
    assert torch.allclose(first.sum(1), torch.ones(len(first)))
    first.zero_()  # callers get a copy: the cache cannot be corrupted
    before = token_joint_weights(model, reg)
    assert before.sum() > 0
    with torch.no_grad():  # new weights -> recomputed
        model.token_emb.codebook.mul_(2.0)
        try:
            after = token_joint_weights(model, reg)
            torch.testing.assert_close(after, _token_joint_weights(model, reg), atol=0, rtol=0)
            assert not torch.allclose(after, before)
        finally:
            model.token_emb.codebook.div_(2.0)


def test_body_fitter_is_built_once_per_body_weights(body):
    """The cached fitter fits exactly as a fresh one, and is rebuilt when the body's tensors change."""
    from smplfitter.pt import BodyFitter

    from moro.body.fitting import fit_sequence, to_smplfitter
    from moro.inference.postprocess import body_fitter

    f = body_fitter(body)
    assert body_fitter(body) is f
    g = torch.Generator().manual_seed(0)
    pose = torch.linalg.matrix_exp(_skew(torch.zeros(3, body.num_joints - 1, 3).normal_(0, 0.3, generator=g)))
    verts = body(pose, body.zero_betas()).vertices
    cached = fit_sequence(body, verts, fitter=f)
    fresh = fit_sequence(body, verts, fitter=BodyFitter(to_smplfitter(body)))
    torch.testing.assert_close(cached.vertices, fresh.vertices, atol=0, rtol=0)
    torch.testing.assert_close(cached.betas, fresh.betas, atol=0, rtol=0)
    with torch.no_grad():
        body.v_template.add_(0.0)  # an in-place change (even a no-op one) marks new weights
    assert body_fitter(body) is not f


def _skew(w: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    z = torch.zeros_like(w[..., 0])
    return torch.stack([torch.stack([z, -w[..., 2], w[..., 1]], -1), torch.stack([w[..., 2], z, -w[..., 0]], -1),
                        torch.stack([-w[..., 1], w[..., 0], z], -1)], -2)
