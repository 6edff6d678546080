"""EMA vector quantizer: nearest codes, straight-through gradients, EMA maths, restarts, perplexity."""

import pytest
import torch

from moro.tokenizer.quantizer import VectorQuantizerEMA


def test_nearest_matches_brute_force():
    q = VectorQuantizerEMA(64, 9)
    z = torch.randn(4, 10, 9)
    brute = torch.cdist(z.reshape(-1, 9), q.codebook).argmin(1).view(4, 10)
    assert torch.equal(q.nearest(z), brute)
    torch.testing.assert_close(q.lookup(brute), q.codebook[brute])


def test_eval_mode_is_pure_and_straight_through():
    q = VectorQuantizerEMA(32, 4, commitment_weight=0.25).eval()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(3, 5, 4, requires_grad=True)
    out = q(z)
    assert out.codes.shape == (3, 5) and out.codes.dtype == torch.int64 and out.quantized.shape == (3, 5, 4)
    torch.testing.assert_close(out.quantized, q.codebook[out.codes])
    torch.testing.assert_close(out.commit_loss, 0.25 * ((z - q.codebook[out.codes]) ** 2).mean())
    grad = torch.randn(3, 5, 4)
    (out.quantized * grad).sum().backward()
    torch.testing.assert_close(z.grad, grad)  # straight-through: identity gradient
    for k, v in q.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_ema_update_moves_codes_to_cluster_means():
    q = VectorQuantizerEMA(2, 2, decay=0.0, epsilon=1e-9, restart_after=1000)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    q.steps_unused.zero_()
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0], [11.0, 9.0], [10.0, 12.0]])
    q.train()(z)
    torch.testing.assert_close(q.codebook, torch.tensor([[0.5, 0.5], [10.0, 10.0]]), atol=1e-5, rtol=0)
    torch.testing.assert_close(q.ema_count, torch.tensor([2.0, 3.0]))


def test_ema_with_decay_is_a_running_mean():
    q = VectorQuantizerEMA(1, 1, decay=0.9, epsilon=1e-9, restart_after=1000).train()
    q.codebook.fill_(0.0)
    q.ema_count.fill_(1.0)
    q.steps_unused.zero_()
    q(torch.full((4, 1), 2.0))
    # count 0.9 * 1 + 0.1 * 4 = 1.3, sum 0.9 * 0 + 0.1 * 8 = 0.8
    torch.testing.assert_close(q.codebook, torch.tensor([[0.8 / 1.3]]))


def test_fresh_codebook_is_initialised_from_the_first_batch():
    q = VectorQuantizerEMA(16, 3, restart_after=5).train()
    z = torch.randn(200, 3) * 0.01 + 5.0  # far from the N(0, 1) initial codes
    q(z)
    assert q.dead_codes == 0
    dist = torch.cdist(q.codebook, z).min(1).values
    assert dist.max() < 0.05  # every code sits on (or at the mean of) batch latents


def test_dead_codes_are_restarted_from_the_batch():
    q = VectorQuantizerEMA(4, 2, restart_after=3).train()
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0], [-50.0, 50.0]]))
    q.ema_count.fill_(1.0)
    q.ema_sum.copy_(q.codebook)
    q.steps_unused.zero_()
    z = torch.tensor([[0.1, 0.0], [0.9, 0.1], [0.2, 0.1], [1.1, -0.1]])
    for step in range(3):
        assert q.dead_codes == 0
        q(z)
    far = q.codebook[2:]
    assert torch.cdist(far, z).min(1).values.max() < 1e-6  # codes 2 and 3 now sit on batch latents
    assert q.steps_unused[2:].eq(0).all()


def test_perplexity_counts_used_codes():
    q = VectorQuantizerEMA(8, 2).eval()
    z = q.codebook[torch.arange(8).repeat(5)]
    torch.testing.assert_close(q(z).perplexity, torch.tensor(8.0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(q(z[:1].repeat(10, 1)).perplexity, torch.tensor(1.0))


def test_bad_inputs_name_the_fix():
    q = VectorQuantizerEMA(8, 3)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        q.lookup(torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="code dimension 3"):
        q(torch.randn(2, 4))
    with pytest.raises(ValueError, match="decay"):
        VectorQuantizerEMA(decay=1.0)
