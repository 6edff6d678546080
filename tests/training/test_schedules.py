"""LR schedules of design.md: step decay at fractions of the run, warm-up + cosine; state round trip."""

import pytest
import torch

from moro.training.schedules import make_adamw, step_factor, step_schedule, warmup_cosine_factor, warmup_cosine_schedule


def lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_schedule_decays_by_0_2_at_half_and_three_quarters():
    opt = make_adamw([torch.nn.Parameter(torch.zeros(2))], lr=1.0, weight_decay=1e-5)
    got = lrs(step_schedule(opt, 8), opt, 8)
    assert got == pytest.approx([1, 1, 1, 1, 0.2, 0.2, 0.04, 0.04])
    assert step_factor(100_000, 200_000) == pytest.approx(0.2) and step_factor(99_999, 200_000) == 1.0  # paper milestones
    assert step_factor(150_000, 200_000) == pytest.approx(0.04)


def test_warmup_cosine_endpoints():
    assert warmup_cosine_factor(0, 10_000) == pytest.approx(0.01)
    assert warmup_cosine_factor(2000, 10_000) == pytest.approx(1.0)
    assert warmup_cosine_factor(10_000, 10_000) == pytest.approx(0.1)
    assert 0.1 < warmup_cosine_factor(6000, 10_000) < 1.0


def test_schedule_state_round_trip_continues_the_curve():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = make_adamw([p], lr=1.0, weight_decay=0.0)
    sched = warmup_cosine_schedule(opt, 20, warmup_steps=5)
    head = lrs(sched, opt, 7)
    opt2 = make_adamw([p], lr=1.0, weight_decay=0.0)
    sched2 = warmup_cosine_schedule(opt2, 20, warmup_steps=5)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert lrs(sched2, opt2, 5) == pytest.approx(lrs(sched, opt, 5))
    assert head[0] == pytest.approx(0.01)


def test_bad_arguments():
    with pytest.raises(ValueError, match="trainable"):
        make_adamw([torch.nn.Parameter(torch.zeros(1), requires_grad=False)], 1e-3, 0.0)
    opt = make_adamw([torch.nn.Parameter(torch.zeros(1))], 1e-3, 0.0)
    with pytest.raises(ValueError, match="milestones"):
        step_schedule(opt, 10, milestones=(0.5, 1.5))
