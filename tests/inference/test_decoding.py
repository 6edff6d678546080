"""Iterative masked decoding: the cosine schedule, the no-re-mask rule, trajectory feedback, determinism."""

import math
import sys
from pathlib import Path

import pytest
import torch

from moro.inference.decoding import StepOutput, decode_clip, iterative_decode, masked_schedule

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from moro_tiny import image_features, tiny_model  # noqa: E402

K_CODES = 7


def test_schedule_values():
    assert masked_schedule(10, 5) == [10, 9, 7, 3, 1, 0]  # round-half-up of 10 (1 + cos(pi k / 5)) / 2
    assert masked_schedule(4, 2) == [4, 2, 0]
    assert masked_schedule(1, 2) == [1, 1, 0]  # 0.5 rounds up
    assert masked_schedule(7, 1) == [7, 0]
    for n in (0, 1, 5, 96 * 60):
        for k in (1, 2, 5, 9):
            s = masked_schedule(n, k)
            assert s[0] == n and s[-1] == 0 and all(a >= b for a, b in zip(s, s[1:]))
            assert s == [math.floor(n * (1 + math.cos(math.pi * i / k)) / 2 + 0.5) for i in range(k + 1)]


class FakeNetwork:
    """Records its inputs; logits from a fixed random table (different each pass), traj = pass number."""

    def __init__(self, b, t, n, seed=0):
        self.g = torch.Generator().manual_seed(seed)
        self.shape = (b, t, n)
        self.inputs, self.trajs, self.logits = [], [], []

    def __call__(self, ids, traj, masked=None):
        self.inputs.append(ids.clone())
        self.trajs.append(traj.clone())
        logits = 3 * torch.randn(*self.shape, K_CODES, generator=self.g)
        self.logits.append(logits)
        k = len(self.inputs)
        return StepOutput(logits, torch.full_like(traj, float(k)), torch.full((*self.shape[:2], 4), -float(k)))


@pytest.mark.parametrize("b,t,n,iters", [(1, 5, 3, 5), (2, 4, 6, 5), (3, 2, 4, 3), (1, 3, 2, 1)])
def test_schedule_and_no_remask_with_fake_logits(b, t, n, iters):
    net = FakeNetwork(b, t, n)
    init = torch.randn(b, t, 9)
    res = iterative_decode(net, init, n, K_CODES, iters)
    sched = masked_schedule(t * n, iters)
    assert len(net.inputs) == iters and res.masked_counts == sched
    prev_fixed = torch.zeros(b, t, n, dtype=torch.bool)
    for k, ids in enumerate(net.inputs):  # ids fed to pass k + 1
        masked = ids == K_CODES
        assert torch.all(masked.flatten(1).sum(1) == sched[k])  # exactly m_k still masked
        fixed = ~masked
        assert torch.all(fixed | ~prev_fixed)  # once fixed, never masked again
        if k:
            same = net.inputs[k - 1] != K_CODES
            assert torch.equal(ids[same], net.inputs[k - 1][same])  # fixed ids never change
            # the newly fixed tokens are the most confident of the previously masked ones, top-1
            prob, top = net.logits[k - 1].softmax(-1).max(-1)
            newly = fixed & ~same
            assert torch.equal(ids[newly], top[newly])
            stay = masked
            for i in range(b):
                if newly[i].any() and stay[i].any():
                    assert prob[i][newly[i]].min() >= prob[i][stay[i]].max()
        prev_fixed = fixed
    assert not (res.ids == K_CODES).any() and res.ids.max() < K_CODES
    assert torch.equal(res.fixed_at.unique(), torch.arange(1, iters + 1)[[sched[i] > sched[i + 1] for i in range(iters)]])
    # trajectory feedback: pass 1 sees the coarse (initial) trajectory, pass k the refined one of pass k - 1
    assert torch.equal(net.trajs[0], init)
    for k in range(1, iters):
        assert torch.all(net.trajs[k] == k)
    assert torch.all(res.traj == iters) and torch.all(res.contact_logits == -iters)


def test_confidence_is_the_probability_when_fixed():
    b, t, n = 1, 3, 4
    net = FakeNetwork(b, t, n, seed=3)
    res = iterative_decode(net, torch.zeros(b, t, 9), n, K_CODES, 4)
    for k in range(1, 5):
        sel = res.fixed_at == k
        prob, top = net.logits[k - 1].softmax(-1).max(-1)
        assert torch.allclose(res.confidence[sel], prob[sel]) and torch.equal(res.ids[sel], top[sel])


def test_deterministic_with_a_real_model():
    model = tiny_model(seed=4, window=3).eval()
    image = image_features(1, 6, model.config.transformer.width, seed=2)
    a = decode_clip(model, image)
    b = decode_clip(model, image)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.traj, b.traj)
    assert a.ids.shape == (1, 6, model.config.tokens.num_tokens) and int(a.ids.max()) < model.mask_id
    assert a.masked_counts == masked_schedule(6 * model.config.tokens.num_tokens, 5)
    with pytest.raises(ValueError, match="eval mode"):
        decode_clip(model.train(), image)


@pytest.mark.parametrize("motion_prior", [True, False])
def test_model_step_scoring_masked_slots_equals_the_full_logits(motion_prior):
    """model_step skips both pose heads and scores only the still-masked slots: the same ids,
    confidences and trajectory as a step that takes the decoder's full logits and their softmax."""
    from moro.inference.decoding import DecodingConfig, model_step

    model = tiny_model(seed=5, window=3).eval()
    image = image_features(2, 7, model.config.transformer.width, seed=6)
    calls = []

    def full(ids, traj, masked):
        out = model(ids, model.canonical_input(traj), image) if motion_prior else model(None, None, image)
        assert out.decoder.logits is not None and (out.motion is None or out.motion.logits is not None)
        return StepOutput(out.decoder.logits, out.decoder.traj, out.decoder.contact_logits)

    def fast(ids, traj, masked):
        out = model_step(model, image, motion_prior)(ids, traj, masked)
        calls.append(out)
        return out

    n = model.config.tokens.num_tokens
    with torch.no_grad():
        ref = iterative_decode(full, image.coarse_traj, n, model.mask_id, 5)
        got = iterative_decode(fast, image.coarse_traj, n, model.mask_id, 5)
        assert torch.equal(got.ids, decode_clip(model, image, DecodingConfig(5, motion_prior)).ids)
    assert all(c.logits is None and c.top is not None for c in calls)
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.fixed_at, ref.fixed_at)
    torch.testing.assert_close(got.confidence, ref.confidence, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got.traj, ref.traj, rtol=1e-5, atol=1e-6)
    # the pose head ran on the still-masked slots only: their share shrinks pass after pass
    assert [c.top[0].numel() for c in calls] == [int((ref.fixed_at >= k).sum()) for k in range(1, 6)]


def test_bad_settings():
    with pytest.raises(ValueError, match="iterations"):
        iterative_decode(FakeNetwork(1, 2, 2), torch.zeros(1, 2, 9), 2, K_CODES, 0)
    with pytest.raises(ValueError, match="logits"):
        iterative_decode(FakeNetwork(1, 2, 2), torch.zeros(1, 2, 9), 3, K_CODES, 2)
    with pytest.raises(ValueError, match="top-1"):
        iterative_decode(lambda ids, traj, masked: StepOutput(None, traj, top=(torch.zeros(1, 2), torch.zeros(1, 2).long())),
                         torch.zeros(1, 2, 9), 2, K_CODES, 2)


def test_decoding_runs_on_meta_tensors_and_scores_only_masked_slots():
    """`moro bench speed` counts the decoding's FLOPs on meta tensors, so the loop's shapes must not
    depend on values; the count is K network passes without pose heads plus the decoder's head on
    the still-masked slots of each pass (sum of m_0 .. m_(K-1) rows), not on all K t n slots."""
    import copy

    from moro.bench.flops import count_flops
    from moro.model.moro import ImageFeatures

    model = copy.deepcopy(tiny_model(seed=7, window=3)).eval().to("meta")
    t, n = 5, model.config.tokens.num_tokens
    image = image_features(1, t, model.config.transformer.width, seed=8)
    image = ImageFeatures(**{k: None if v is None else v.to("meta") for k, v in vars(image).items()})
    ids = torch.zeros(1, t, n, dtype=torch.long, device="meta")
    with torch.no_grad():
        total = count_flops(lambda: decode_clip(model, image))
        one_pass = count_flops(lambda: model(ids, model.canonical_input(image.coarse_traj), image, pose_logits=False))
    d, k = model.config.transformer.width, model.mask_id
    head_rows = sum(masked_schedule(t * n, 5)[:-1])
    assert head_rows < 5 * t * n
    assert total == 5 * one_pass + 2 * d * k * head_rows
