"""Losses (supplement A.5 + canonical trajectory + contact) and the Gumbel-softmax decoding."""

import math

import pytest
import torch

from moro.model.gumbel import GumbelConfig, gumbel_softmax_hard, gumbel_temperature
from moro.model.losses import LossConfig, contact_from_joints, moro_losses
from moro.model.masking import IGNORE_INDEX

B, T, N, K, V, J = 2, 6, 5, 8, 30, 22
FPS = 30.0


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _clip(seed=0):
    g = _gen(seed)
    labels = torch.randint(0, K, (B, T, N), generator=g)
    labels[:, :, 0] = IGNORE_INDEX
    gt = dict(
        labels=labels,
        verts_local=0.3 * torch.randn(B, T, V, 3, generator=g),
        traj=torch.randn(B, T, 9, generator=g),
        cano_traj=torch.randn(B, T, 9, generator=g),
        joints=torch.randn(B, T, J, 3, generator=g),
        joints2d=200 + 50 * torch.randn(B, T, J, 2, generator=g),
        bbox=torch.tensor([200.0, 200.0, 1.0]).expand(B, T, 3),
    )
    return gt


def _perfect_pred(gt, sources=("coarse", "cano", "refined")):
    big = 50.0 * torch.nn.functional.one_hot(gt["labels"].clamp_min(0), K).float()
    pred = dict(motion_logits=big, decoder_logits=big, verts_local=gt["verts_local"], cano_traj=gt["cano_traj"])
    for src in sources:
        pred[f"joints_{src}"] = gt["joints"]
        pred[f"joints2d_{src}"] = gt["joints2d"]
    pred["traj_coarse"] = pred["traj_refined"] = gt["traj"]
    contact = contact_from_joints(gt["joints"], FPS)
    pred["motion_contact"] = pred["decoder_contact"] = 40 * (2 * contact - 1)
    return pred


def test_terms_present_only_when_inputs_exist():
    gt = _clip()
    motion_only = {k: gt[k] for k in ("labels", "verts_local", "cano_traj", "joints")}
    pred = _perfect_pred(gt, sources=("cano",))
    pred = {k: v for k, v in pred.items() if not k.startswith(("decoder", "traj_", "joints2d"))}
    terms = moro_losses(pred, motion_only, fps=FPS)
    assert set(terms) == {"ce_motion", "vertices", "cano_traj", "joints_cano", "joint_vel_cano", "foot_skate_cano",
                          "contact_motion", "total"}
    image_only = {k: gt[k] for k in ("labels", "verts_local", "traj", "joints", "joints2d", "bbox")}
    pred = {k: v for k, v in _perfect_pred(gt, ("coarse", "refined")).items() if not k.startswith(("motion", "cano"))}
    single = {k: v[:, :1] for k, v in image_only.items()}
    terms = moro_losses({k: v[:, :1] for k, v in pred.items()}, single, fps=FPS)
    assert set(terms) == {"ce_decoder", "vertices", "traj_coarse", "traj_refined", "joints_coarse", "joints_refined",
                          "reproj_coarse", "reproj_refined", "total"}  # one frame: no velocity, skating or contact
    with pytest.raises(ValueError, match="no loss term"):
        moro_losses({"verts_local": gt["verts_local"]}, {"labels": gt["labels"]})


def test_perfect_predictions_cost_almost_nothing_and_total_is_the_weighted_sum():
    gt = _clip()
    terms = moro_losses(_perfect_pred(gt), gt, fps=FPS)
    for k, v in terms.items():
        assert torch.isfinite(v) and float(v) < (1e-2 if k == "total" else 2e-3), (k, float(v))  # RMSE eps floor
    cfg = LossConfig()
    pred = _perfect_pred(gt)
    pred["verts_local"] = pred["verts_local"] + 0.1
    terms = moro_losses(pred, gt, cfg, fps=FPS)
    torch.testing.assert_close(terms["vertices"], torch.tensor(math.sqrt(0.03)), atol=1e-3, rtol=0)  # RMSE, m
    total = sum(cfg.weight(k) * v for k, v in terms.items() if k != "total")
    torch.testing.assert_close(terms["total"], total)
    assert cfg.weight("vertices") == 10 and cfg.weight("joint_vel_cano") == 20 and cfg.weight("cano_traj") == 10
    assert cfg.weight("traj_refined") == 1 and cfg.weight("ce_decoder") == 1 and cfg.weight("contact_motion") == 1


def test_reprojection_is_in_crop_units():
    gt = _clip()
    pred = _perfect_pred(gt, ("refined",))
    pred["joints2d_refined"] = gt["joints2d"] + torch.tensor([100.0, 0.0])  # 100 s pixels = one box half-side
    torch.testing.assert_close(moro_losses(pred, gt)["reproj_refined"], torch.tensor(1.0), atol=1e-4, rtol=0)


def _walking_feet(speed_mps: float):
    """Joints (1, t, 22, 3) at rest except the 4 contact joints moving along x at speed_mps."""
    j = torch.zeros(1, 8, J, 3)
    for idx in (7, 10, 8, 11):
        j[0, :, idx, 0] = torch.arange(8) * speed_mps / FPS
    return j


def test_contact_ground_truth_from_foot_speed():
    assert torch.all(contact_from_joints(_walking_feet(0.2), FPS) == 1)
    assert torch.all(contact_from_joints(_walking_feet(0.4), FPS) == 0)


def test_foot_skating_hinge_in_contact_frames():
    gt = {"joints": _walking_feet(0.0)}  # GT feet planted: contact everywhere
    slow = moro_losses({"joints_refined": _walking_feet(0.1)}, gt, fps=FPS)["foot_skate_refined"]
    fast = moro_losses({"joints_refined": _walking_feet(0.25)}, gt, fps=FPS)["foot_skate_refined"]
    assert float(slow) == 0.0
    torch.testing.assert_close(fast, torch.tensor(0.10), atol=1e-5, rtol=0)  # 0.25 - 0.15 m/s
    gt_moving = {"joints": _walking_feet(1.0)}  # no GT contact: no skating penalty
    assert float(moro_losses({"joints_refined": _walking_feet(0.25)}, gt_moving, fps=FPS)["foot_skate_refined"]) == 0


def test_frame_weights_ignore_invalid_frames():
    gt = _clip()
    pred = _perfect_pred(gt)
    pred["verts_local"] = pred["verts_local"].clone()
    pred["verts_local"][:, 3] += 5.0  # garbage in frame 3 only
    gt["frame_weight"] = torch.ones(B, T)
    gt["frame_weight"][:, 3] = 0
    assert float(moro_losses(pred, gt)["vertices"]) < 1e-3


def test_gumbel_hard_straight_through():
    logits = torch.randn(4, 3, K, generator=_gen(1), requires_grad=True)
    y = gumbel_softmax_hard(logits, 0.7, _gen(2))
    assert torch.all((y == 0) | (y == 1)) and torch.all(y.sum(-1) == 1)
    w = torch.randn(K, generator=_gen(3))
    (y * w).sum().backward()
    # same noise, soft path: gradients must equal the soft sample's
    logits2 = logits.detach().clone().requires_grad_(True)
    u = torch.rand(logits2.shape, generator=_gen(2))
    soft = ((logits2 - torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-7)))) / 0.7).softmax(-1)
    (soft * w).sum().backward()
    torch.testing.assert_close(logits.grad, logits2.grad)
    y0 = gumbel_softmax_hard(logits.detach(), 1.0, None)  # no generator: plain argmax
    assert torch.equal(y0.argmax(-1), logits.detach().argmax(-1))


def test_gumbel_uses_only_the_given_generator():
    state = torch.random.get_rng_state()
    a = gumbel_softmax_hard(torch.zeros(100, K), 1.0, _gen(5))
    b = gumbel_softmax_hard(torch.zeros(100, K), 1.0, _gen(5))
    assert torch.equal(a, b) and torch.equal(torch.random.get_rng_state(), state)
    assert len(set(a.argmax(-1).tolist())) > 1


def test_temperature_schedule():
    assert gumbel_temperature(0, 1000) == pytest.approx(1.0)
    assert gumbel_temperature(1000, 1000) == pytest.approx(0.01)
    assert gumbel_temperature(500, 1000) == pytest.approx(0.505)
    assert gumbel_temperature(5000, 1000) == pytest.approx(0.01)  # clamped
    assert GumbelConfig().tau_validation == 0.5


def test_per_source_trajectory_target_overrides_the_shared_one():
    g = torch.Generator().manual_seed(0)
    gt_traj = torch.randn(2, 3, 9, generator=g)
    coarse, refined = torch.randn(2, 3, 9, generator=g), torch.randn(2, 3, 9, generator=g)
    pred = {"traj_coarse": coarse, "traj_refined": refined}
    shared = moro_losses(pred, {"traj": gt_traj}, LossConfig())
    assert shared["traj_coarse"] == pytest.approx(float((coarse - gt_traj).square().mean()), rel=1e-6)
    own = gt_traj.clone()
    own[..., 6:] = coarse[..., 6:]  # the image stage's rotation-only target of the coarse prediction
    split = moro_losses(pred, {"traj": gt_traj, "traj_coarse": own}, LossConfig())
    rot_only = float((coarse[..., :6] - gt_traj[..., :6]).square().sum(-1).mean() / 9)
    assert split["traj_coarse"] == pytest.approx(rot_only, rel=1e-6)
    assert split["traj_refined"] == pytest.approx(float(shared["traj_refined"]), rel=1e-6)  # untouched
