"""Masking: the cosine ratio schedule, counts per mode, corruption, labels, explicit RNG."""

import math

import pytest
import torch

from moro.model.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    inference_masking,
    mask_ratio,
    mask_tokens,
    masked_count,
    masked_cross_entropy,
    sample_mask_ratio,
)

K = 16  # codes; [MASK] = 16
B, T, N = 6, 10, 7
RATIOS = torch.tensor([1.0, 0.9, 0.55, 0.3, 0.05, 0.0])


@pytest.fixture
def ids():
    return torch.randint(0, K, (B, T, N), generator=torch.Generator().manual_seed(0))


def test_cosine_schedule():
    torch.testing.assert_close(mask_ratio(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([1.0, math.cos(math.pi / 4), 0.0]))
    r = sample_mask_ratio(200_000, torch.Generator().manual_seed(0))
    assert r.min() >= 0 and r.max() <= 1
    assert abs(float(r.mean()) - 2 / math.pi) < 0.005  # E[cos(pi u / 2)] = 2 / pi


def test_random_mode_counts(ids):
    m = mask_tokens(ids, "random", K, torch.Generator().manual_seed(1), ratio=RATIOS)
    expected = (RATIOS * T * N).round().clamp(1, T * N)
    assert torch.equal(m.mask.sum((1, 2)), expected.long())


def test_joint_mode_masks_whole_slots(ids):
    m = mask_tokens(ids, "joint", K, torch.Generator().manual_seed(2), ratio=RATIOS)
    assert torch.all(m.mask == m.mask[:, :1])  # same slots in every frame
    assert torch.equal(m.mask[:, 0].sum(1), (RATIOS * N).round().clamp(1, N).long())


def test_frame_mode_masks_contiguous_whole_frames(ids):
    m = mask_tokens(ids, "frame", K, torch.Generator().manual_seed(3), ratio=RATIOS)
    frames = m.mask.all(2)
    assert torch.equal(frames, m.mask.any(2))  # all tokens of a masked frame
    assert torch.equal(frames.sum(1), (RATIOS * T).round().clamp(1, T).long())
    for row in frames:
        idx = torch.nonzero(row).flatten()
        assert torch.equal(idx, torch.arange(int(idx[0]), int(idx[0]) + len(idx)))


def test_full_mode_masks_everything_without_corruption(ids):
    m = mask_tokens(ids, "full", K, torch.Generator().manual_seed(4))
    assert m.mask.all() and torch.all(m.input_ids == K) and torch.equal(m.labels, ids)


def test_corruption_labels_and_visible_tokens():
    ids = torch.randint(0, K, (64, 20, 10), generator=torch.Generator().manual_seed(5))
    m = mask_tokens(ids, "random", K, torch.Generator().manual_seed(6), ratio=torch.full((64,), 0.8))
    shown = m.input_ids[m.mask]
    frac_random = float((shown != K).float().mean())
    assert abs(frac_random - 0.1) < 0.02  # 10 % of masked positions show a random code
    assert torch.equal(m.input_ids[~m.mask], ids[~m.mask])  # unmasked: ground truth
    assert torch.equal(m.labels[m.mask], ids[m.mask]) and torch.all(m.labels[~m.mask] == IGNORE_INDEX)


def test_explicit_generator_only(ids):
    state = torch.random.get_rng_state()
    a = mask_tokens(ids, "random", K, torch.Generator().manual_seed(7))
    b = mask_tokens(ids, "random", K, torch.Generator().manual_seed(7))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG was not used
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.ratio, b.ratio)


def test_inference_mode_remasks_the_least_confident(ids):
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(B, T, N, K, generator=g)
    calls = []

    def first_pass(x):
        calls.append((x.clone(), torch.is_grad_enabled()))
        return logits, "refined-trajectory"

    m, extra = inference_masking(ids, first_pass, K, g, MaskingConfig(corrupt_prob=0.0), ratio=RATIOS)
    assert extra == "refined-trajectory" and len(calls) == 1
    assert torch.all(calls[0][0] == K) and calls[0][1] is False  # all masked, no grad
    count = masked_count(RATIOS, T * N)
    assert torch.equal(m.mask.sum((1, 2)), count)
    conf, pred = logits.softmax(-1).max(-1)
    for i in range(B):
        if (~m.mask[i]).any():
            assert conf[i][m.mask[i]].max() <= conf[i][~m.mask[i]].min()
    assert torch.equal(m.input_ids[~m.mask], pred[~m.mask])  # pass-1 argmax where kept
    assert torch.all(m.input_ids[m.mask] == K) and torch.equal(m.labels[m.mask], ids[m.mask])


def test_cross_entropy_only_on_masked_positions(ids):
    m = mask_tokens(ids, "random", K, torch.Generator().manual_seed(9), ratio=torch.full((B,), 0.5))
    logits = torch.randn(B, T, N, K, generator=torch.Generator().manual_seed(10))
    logits2 = logits.clone()
    logits2[~m.mask] += 5 * torch.randn(int((~m.mask).sum()), K)
    torch.testing.assert_close(masked_cross_entropy(logits, m.labels), masked_cross_entropy(logits2, m.labels))
    ref = torch.nn.functional.cross_entropy(logits[m.mask], ids[m.mask])
    torch.testing.assert_close(masked_cross_entropy(logits, m.labels), ref)


def test_bad_input_names_the_problem(ids):
    g = torch.Generator()
    with pytest.raises(ValueError, match="masking mode"):
        mask_tokens(ids, "spiral", K, g)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        mask_tokens(ids + K, "random", K, g)
