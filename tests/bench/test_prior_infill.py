"""benchmarks/prior_infill.py: the span-filling loop and the linear blend baseline."""

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "prior_infill", Path(__file__).resolve().parents[2] / "benchmarks" / "prior_infill.py")
infill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(infill)

MASK = 5


def test_fill_span_touches_only_the_span_and_follows_the_confidence_order():
    """Fake logits prefer code (frame + slot) % 5 with a confidence that grows with the flat position, and see
    the input: a position whose left neighbour is already fixed prefers code 4. Outside the span nothing
    changes; one pass takes every top-1 code at once; more passes fix the confident (later) positions first."""
    t, n = 6, 3
    ids = torch.arange(t * n).view(t, n) % 4
    span = slice(2, 4)
    seen = []

    def logits(x):
        seen.append(x.clone())
        out = torch.zeros(t, n, MASK)
        for f in range(t):
            for s in range(n):
                fixed_left = s > 0 and int(x[f, s - 1]) != MASK and span.start <= f < span.stop
                out[f, s, 4 if fixed_left else (f + s) % 5] = 1.0 + 0.1 * (f * n + s)
        return out

    one = infill.fill_span(logits, ids, span, MASK, 1)
    assert torch.equal(one[:2], ids[:2]) and torch.equal(one[4:], ids[4:])
    assert torch.equal(one[span], torch.tensor([[2, 3, 4], [3, 4, 0]]))  # every top-1 of the all-masked span
    assert int((seen[0][span] == MASK).sum()) == 6 and not (seen[0][:2] == MASK).any()
    seen.clear()
    three = infill.fill_span(logits, ids, span, MASK, 3)
    assert len(seen) == 3 and not (three == MASK).any() and torch.equal(three[4:], ids[4:])
    # masked_schedule(6, 3) = [6, 5, 2, 0]: pass 1 fixes the most confident position (frame 3, slot 2) alone
    assert int((seen[1] == MASK).sum()) == 5 and int(seen[1][3, 2]) == 0
    assert three[2, 0] == 2  # slot 0 never has a fixed left neighbour: its own code


def test_blend_is_linear_between_the_neighbours():
    j = torch.zeros(6, 2, 3)
    j[1], j[4] = 1.0, 4.0
    out = infill.blend(j, slice(2, 4))
    torch.testing.assert_close(out[2:4, 0, 0], torch.tensor([2.0, 3.0]))
    assert torch.equal(out[[0, 1, 4, 5]], j[[0, 1, 4, 5]])
    with pytest.raises(ValueError, match="needs a frame on each side"):
        infill.blend(j, slice(0, 2))
