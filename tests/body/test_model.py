"""BodyModel (generic LBS) on a hand-made two-bone model with analytic answers."""

import math

import pytest
import torch

from moro.body.model import BodyModel
from moro.body.model_data import BodyModelData, BodyModelFileError
from moro.geometry.rotations import rotvec_to_rotmat, rotz

F64 = torch.float64


def chain_data(posedirs=False) -> BodyModelData:
    """Three joints on the x axis at 0, 1, 2; vertices at x = 0.5 (joint 0), 1.5 (joint 1), 2.5 (joint 2)."""
    v = torch.tensor([[0.5, 0, 0], [1.5, 0, 0], [2.5, 0, 0], [1.5, 1.0, 0]], dtype=F64)
    j = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]], dtype=F64)
    w = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0.5, 0.5]], dtype=F64)
    s = torch.zeros(4, 3, 2, dtype=F64)
    s[:, 1, 0] = 1.0  # beta 0 lifts every vertex by 1 m
    js = torch.zeros(3, 3, 2, dtype=F64)
    js[:, 0, 1] = torch.tensor([0.0, 1.0, 2.0])  # beta 1 stretches the chain
    pd = torch.zeros(4, 3, 18, dtype=F64) if posedirs else None
    return BodyModelData(
        name="chain", v_template=v, shapedirs=s, j_template=j, j_shapedirs=js, weights=w, posedirs=pd,
        parents=[-1, 0, 1], joint_names=["a", "b", "c"], faces=torch.tensor([[0, 1, 3]]),
        joints22_regressor=torch.full((22, 4), 0.25, dtype=F64), coco17_regressor=torch.full((17, 4), 0.25, dtype=F64),
        foot_vertices=torch.tensor([0, 1, 2, 3]),
    )


def test_rest_pose_reproduces_template_relative_to_root():
    body = BodyModel(chain_data()).double()
    out = body(body.identity_pose(dtype=F64), body.zero_betas(dtype=F64))
    torch.testing.assert_close(out.vertices, chain_data().v_template)
    torch.testing.assert_close(out.joints, chain_data().j_template)


def test_rotating_joint_one_moves_its_vertices_analytically():
    body = BodyModel(chain_data()).double()
    pose = body.identity_pose(dtype=F64)
    pose[0] = rotz(torch.tensor(math.pi / 2, dtype=F64))  # joint 1 (x = 1) turns 90 deg about z
    out = body(pose, body.zero_betas(dtype=F64))
    # vertex 0 is on joint 0: unmoved; vertex 1 at x=1.5 -> (1, 0.5); vertex 2 at x=2.5 -> (1, 1.5)
    torch.testing.assert_close(out.vertices[0], torch.tensor([0.5, 0, 0], dtype=F64))
    torch.testing.assert_close(out.vertices[1], torch.tensor([1.0, 0.5, 0], dtype=F64))
    torch.testing.assert_close(out.vertices[2], torch.tensor([1.0, 1.5, 0], dtype=F64))
    torch.testing.assert_close(out.joints[2], torch.tensor([1.0, 1.0, 0], dtype=F64))
    # vertex 3 (1.5, 1) blends joints 1 and 2, which share the same transform here: (0, 0.5)
    torch.testing.assert_close(out.vertices[3], torch.tensor([0.0, 0.5, 0], dtype=F64))


def test_shape_and_root_placement():
    body = BodyModel(chain_data()).double()
    betas = torch.tensor([0.0, 1.0], dtype=F64)  # joints at 0, 2, 4
    out = body(body.identity_pose(dtype=F64), betas)
    torch.testing.assert_close(out.joints[:, 0], torch.tensor([0.0, 2.0, 4.0], dtype=F64))
    R = rotz(torch.tensor(0.3, dtype=F64))
    t = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    placed = body(body.identity_pose(dtype=F64), betas, R, t)
    torch.testing.assert_close(placed.vertices, out.vertices @ R.T + t)
    torch.testing.assert_close(body.smpl_transl_to_root_trans(body.root_trans_to_smpl_transl(t, betas), betas), t)


def test_pose_correctives_use_r_minus_identity():
    data = chain_data(posedirs=True)
    data.posedirs[2, 2, 0] = 1.0  # vertex 2, z offset = (R_1 - I)[0, 0]
    body = BodyModel(data).double()
    pose = body.identity_pose(dtype=F64)
    pose[0] = rotz(torch.tensor(math.pi / 2, dtype=F64))  # (R - I)[0, 0] = -1
    plain = BodyModel(chain_data()).double()(pose, body.zero_betas(dtype=F64))
    out = body(pose, body.zero_betas(dtype=F64))
    # the corrective is applied in the rest frame, then rotated by joint 2's transform (about z: z kept)
    torch.testing.assert_close(out.vertices[2] - plain.vertices[2], torch.tensor([0, 0, -1.0], dtype=F64))


def test_gradcheck_forward():
    body = BodyModel(chain_data(posedirs=True)).double()
    rv = torch.randn(2, 2, 3, dtype=F64, requires_grad=True)
    betas = torch.randn(2, 2, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda r, b: body(rotvec_to_rotmat(r), b).vertices, (rv, betas))


@pytest.mark.parametrize(
    "pose_shape,betas_shape",
    [((3, 3), (2,)), ((2, 3, 3), (3,)), ((4, 2, 3, 3), (3, 2)), ((4, 2, 3, 3), (3,)), ((4, 3, 3, 3), (2,))],
)
def test_bad_shapes_are_rejected(pose_shape, betas_shape):
    body = BodyModel(chain_data())
    pose = torch.eye(3).expand(*pose_shape).clone() if len(pose_shape) > 2 else torch.eye(3)
    with pytest.raises(ValueError):
        body(pose, torch.zeros(*betas_shape))


def test_nan_is_rejected():
    body = BodyModel(chain_data())
    pose = body.identity_pose()
    pose[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        body(pose, body.zero_betas())


def test_model_data_validation_names_the_array(tmp_path):
    data = chain_data()
    data.weights = data.weights[:, :2]
    with pytest.raises(BodyModelFileError, match="weights"):
        BodyModel(data)
    good = chain_data()
    good.save(tmp_path / "m.safetensors")
    back = BodyModelData.load(tmp_path / "m.safetensors")
    torch.testing.assert_close(back.v_template, good.v_template.float())
    assert back.parents == good.parents and back.joint_names == good.joint_names
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(BodyModelFileError, match="bad.safetensors"):
        BodyModelData.load(tmp_path / "bad.safetensors")
