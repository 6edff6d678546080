"""Anny conversion: exact against Anny's own forward, regressors, phenotypes, cache, fitting."""

import copy

import pytest
import torch

from moro.body import JOINTS22, load_anny
from moro.body.anny_model import ANNY_TO_CANONICAL, BODY_RIG, JOINTS22_DEFINITION, sample_adult_phenotypes
from moro.body.check import random_pose
from moro.body.model_data import BodyModelData
from moro.geometry.rotations import random_rotmat

F64 = torch.float64


def _anny_reference(topology):
    import anny

    return anny.Anny(topology=topology).to(F64)


def test_matches_annys_own_forward(anny5, gen):
    """Pose our model, hand the same bone poses to Anny (world parameterization), compare vertices."""
    body = copy.deepcopy(anny5).double()
    ref = _anny_reference("notoes_collapse5pc")
    names, parents = list(ref.bone_labels), list(ref.bone_parents)
    rig_index = {b: k for k, (_, bones) in enumerate(BODY_RIG) for b in bones}
    owner = []
    for i, n in enumerate(names):
        owner.append(rig_index[n] if n in rig_index else owner[parents[i]])
    ph = sample_adult_phenotypes(3, gen, F64)
    betas = body.phenotype_to_betas(ph)
    out = body(random_pose(body, 3, gen).double(), betas, random_rotmat((3,), generator=gen, dtype=F64),
               torch.randn(3, 3, generator=gen, dtype=F64))
    rest = ref.get_rest_model(betas)
    c = ANNY_TO_CANONICAL
    heads = rest["rest_bone_heads"] @ c.T
    _, rest_joints = body.shaped(betas)
    world = torch.eye(4, dtype=F64).repeat(3, len(names), 1, 1)
    for i in range(len(names)):
        k = owner[i]
        g = out.global_rotmats[:, k]
        pos = out.joints[:, k] + (g @ (heads[:, i] - rest_joints[:, k]).unsqueeze(-1)).squeeze(-1)
        world[:, i, :3, :3] = c.T @ g @ c @ rest["rest_bone_poses"][:, i, :3, :3]
        world[:, i, :3, 3] = pos @ c
    anny_out = ref(pose_parameters=world, phenotype_kwargs=ph, pose_parameterization="world")
    err = ((anny_out["vertices"] @ c.T) - out.vertices).abs().max()
    assert err < 1e-5, f"max vertex difference {err:.2e} m"


def test_phenotype_to_betas_matches_anny(anny5, gen):
    ref = _anny_reference("notoes_collapse5pc")
    ph = torch.rand(5, 6, generator=gen, dtype=F64)
    expected = ref._get_phenotype_blendshape_coefficients(ph, torch.zeros(5, 0, dtype=F64), torch.zeros(5, 0, dtype=F64))
    torch.testing.assert_close(anny5.phenotype_to_betas(ph), expected, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="within"):
        anny5.phenotype_to_betas(torch.full((6,), 1.5))


def test_rig_and_canonical_frame(anny5):
    assert anny5.num_joints == len(BODY_RIG) == 36 and anny5.num_vertices == 615
    v = anny5.v_template
    left_wrist = anny5.j_template[anny5.joint_names.index("wrist.L")]
    head = anny5.j_template[anny5.joint_names.index("head")]
    assert left_wrist[0] > 0.3, "the body's left is +X"
    assert head[1] > 0.5 and v[:, 1].min() < -0.7, "Y is up"
    toes = anny5.j_template[anny5.joint_names.index("toes.L")]
    ankle = anny5.j_template[anny5.joint_names.index("foot.L")]
    assert toes[2] > ankle[2] + 0.05, "the body faces +Z"
    torch.testing.assert_close(anny5.weights.sum(1), torch.ones(615))


def test_batched_equals_one_by_one(anny5, gen):
    pose = random_pose(anny5, 4, gen)
    betas = anny5.phenotype_to_betas(sample_adult_phenotypes(4, gen))
    batched = anny5(pose, betas).vertices
    for i in range(4):
        torch.testing.assert_close(anny5(pose[i], betas[i]).vertices, batched[i], atol=1e-6, rtol=1e-5)


def test_gradients_reach_pose_and_shape(anny5, gen):
    pose = random_pose(anny5, 2, gen).requires_grad_(True)
    betas = torch.zeros(anny5.num_betas, requires_grad=True)
    anny5(pose, betas).vertices.square().sum().backward()
    assert pose.grad.abs().sum(dim=(-1, -2)).min() > 0, "every joint's rotation influences the mesh"
    assert betas.grad.abs().sum() > 0


def _definition_targets(body, out, betas):
    """Positions of the JOINTS22 definition points (bone-head averages, moved with their bone)."""
    ref = _anny_reference("notoes_collapse5pc")
    heads = ref.get_rest_model(betas.double())["rest_bone_heads"].to(betas) @ ANNY_TO_CANONICAL.to(betas).T
    _, rest_joints = body.shaped(betas)
    names = list(ref.bone_labels)
    cols = []
    for attach, bones in JOINTS22_DEFINITION:
        j = body.joint_names.index(attach)
        x = heads[:, [names.index(b) for b in bones]].mean(1)
        g = out.global_rotmats[:, j]
        cols.append(out.joints[:, j] + (g @ (x - rest_joints[:, j]).unsqueeze(-1)).squeeze(-1))
    return torch.stack(cols, 1)


def test_joints22_regressor_tracks_its_definition(anny5, gen):
    assert len(JOINTS22) == 22
    reg = anny5.joints22_regressor
    assert (reg >= 0).all()
    torch.testing.assert_close(reg.sum(1), torch.ones(22))
    betas = anny5.phenotype_to_betas(sample_adult_phenotypes(32, gen, F64)).float()
    out = anny5(random_pose(anny5, 32, gen, std_rad=0.15), betas)
    err_mm = (anny5.joints22(out.vertices) - _definition_targets(anny5, out, betas)).norm(dim=-1).mean(0) * 1000
    assert err_mm.mean() < 10.0 and err_mm.max() < 25.0, err_mm


def test_coco17_transfer_agrees_with_default_topology(anny5, anny_default, gen):
    """Transferred COCO regressor vs Anny's own on its default topology, same pose and phenotype."""
    ph = sample_adult_phenotypes(1, gen)
    pose = random_pose(anny5, 16, gen)
    small = anny5(pose, anny5.phenotype_to_betas(ph)[0])
    full = anny_default(pose, anny_default.phenotype_to_betas(ph)[0])
    torch.testing.assert_close(small.joints, full.joints, atol=1e-3, rtol=0)  # same skeleton
    err_mm = (anny5.coco17(small.vertices) - anny_default.coco17(full.vertices)).norm(dim=-1).mean(0) * 1000
    assert err_mm.max() < 10.0, err_mm


def test_foot_vertices_are_heels_and_toes_on_the_sole(anny5):
    v = anny5.v_template
    fv = anny5.foot_vertices
    sole = v[:, 1].min()
    assert (v[fv, 1] < sole + 0.03).all()
    assert v[fv[1], 2] > v[fv[0], 2] + 0.15 and v[fv[3], 2] > v[fv[2], 2] + 0.15, "toe ahead of heel"
    assert v[fv[0], 0] > 0 > v[fv[2], 0], "left foot at +X"


def test_cache_round_trip(anny5, tmp_path):
    from moro.body.anny_model import anny_cache_path

    data = BodyModelData.load(anny_cache_path("notoes_collapse5pc"))
    data.save(tmp_path / "copy.safetensors")
    back = BodyModelData.load(tmp_path / "copy.safetensors")
    for key in BodyModelData._TENSORS:
        a, b = getattr(data, key), getattr(back, key)
        assert (a is None and b is None) or torch.equal(a, b), key
    assert back.meta == data.meta and back.extra.keys() == data.extra.keys()


def test_corrupt_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path))
    from moro.body.anny_model import anny_cache_path

    path = anny_cache_path("notoes_collapse5pc")
    path.write_bytes(b"half a file")
    body = load_anny("notoes_collapse5pc")
    assert body.num_vertices == 615 and BodyModelData.load(path).name == "anny/notoes_collapse5pc"


def test_unknown_topology_lists_the_valid_ones():
    with pytest.raises(ValueError, match="notoes_collapse5pc"):
        load_anny("smplx")


def test_fit_round_trip_under_10mm(anny5, gen):
    from moro.body.fitting import fit_sequence

    betas = anny5.phenotype_to_betas(sample_adult_phenotypes(1, gen))[0]
    target = anny5(random_pose(anny5, 4, gen), betas, random_rotmat((4,), generator=gen), torch.randn(4, 3, generator=gen))
    fit = fit_sequence(anny5, target.vertices)
    assert fit.betas.shape == (anny5.num_betas,), "one shape for the sequence"
    err_mm = (fit.vertices - target.vertices).norm(dim=-1).mean() * 1000
    assert err_mm < 10.0, err_mm
    again = anny5(fit.body_pose, fit.betas, fit.root_rot, fit.root_trans).vertices
    torch.testing.assert_close(again, fit.vertices)
