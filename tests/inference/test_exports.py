"""Exports: BVH and GLB re-parse and reproduce the body model; streamed npz; atomic output folders."""

import json

import numpy as np
import pytest
import torch

from moro.geometry import rotvec_to_rotmat
from moro.inference.bvh import bvh_positions, euler_zxy_from_rotmat, read_bvh, rotmat_from_euler_zxy, write_bvh
from moro.inference.errors import OutputDirError
from moro.inference.exports import NpzStreamWriter, OutputDir, read_summary, write_summary
from moro.inference.gltf import read_accessor, read_glb, write_glb


@pytest.fixture(scope="module")
def motion(body):
    """A random 12-frame motion of the Anny body in a world frame."""
    g = torch.Generator().manual_seed(0)
    t = 12
    pose = rotvec_to_rotmat(0.4 * torch.randn(t, body.num_joints - 1, 3, generator=g))
    betas = 0.5 * torch.randn(body.num_betas, generator=g)
    root_rot = rotvec_to_rotmat(torch.randn(t, 3, generator=g))
    root_trans = torch.randn(t, 3, generator=g) + torch.tensor([0.0, 1.0, 0.0])
    out = body(pose, betas, root_rot, root_trans)
    return dict(pose=pose, betas=betas, root_rot=root_rot, root_trans=root_trans, joints=out.joints.numpy(),
                vertices=out.vertices.numpy(), rest=body.shaped(betas))


def test_euler_zxy_round_trip():
    R = rotvec_to_rotmat(torch.randn(200, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2).numpy()
    R[0] = rotmat_from_euler_zxy(np.array([0.3, np.pi / 2, 0.0]))  # gimbal lock
    assert np.allclose(rotmat_from_euler_zxy(euler_zxy_from_rotmat(R)), R, atol=1e-9)


def test_bvh_reproduces_joint_positions(body, motion, tmp_path):
    t = len(motion["pose"])
    rots = np.concatenate([motion["root_rot"][:, None].numpy(), motion["pose"].numpy()], 1)
    chunks = [(motion["root_trans"][a : a + 5].numpy(), rots[a : a + 5]) for a in range(0, t, 5)]
    path = tmp_path / "m.bvh"
    write_bvh(path, body.joint_names, body.parents, motion["rest"][1].numpy(), t, 30.0, chunks)
    bvh = read_bvh(path)
    assert bvh.frame_time == pytest.approx(1 / 30, abs=1e-7) and len(bvh.motion) == t
    assert bvh.channels[0][:3] == ["Xposition", "Yposition", "Zposition"] and bvh.channels[1] == ["Zrotation", "Xrotation", "Yrotation"]
    pos = bvh_positions(bvh)
    order = [body.joint_names.index(n) for n in bvh.names]
    assert sorted(order) == list(range(body.num_joints))
    assert [bvh.parents[k] for k in range(len(order))] == [
        -1 if body.parents[i] < 0 else bvh.names.index(body.joint_names[body.parents[i]]) for i in order]
    err = np.linalg.norm(pos - motion["joints"][:, order], axis=-1)
    assert err.max() < 1e-3  # < 1 mm


def _skin(doc, binary, frame):
    """Reference glTF skinning of the first mesh at ``frame`` (sampler keys are exact frame times)."""
    nodes = doc["nodes"]
    anim = doc["animations"][0]
    local = {}
    for ch in anim["channels"]:
        s = anim["samplers"][ch["sampler"]]
        local[(ch["target"]["node"], ch["target"]["path"])] = read_accessor(doc, binary, s["output"])[frame]
    skin = doc["skins"][0]
    joints = skin["joints"]
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    glob = {}

    def world(i):
        if i in glob:
            return glob[i]
        x, y, z, w = local.get((i, "rotation"), [0, 0, 0, 1])
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = R, local.get((i, "translation"), nodes[i].get("translation", [0, 0, 0]))
        glob[i] = M if i not in parent else world(parent[i]) @ M
        return glob[i]

    ibm = read_accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    mats = np.stack([world(j) @ ibm[k] for k, j in enumerate(joints)])
    prim = doc["meshes"][0]["primitives"][0]
    pos = read_accessor(doc, binary, prim["attributes"]["POSITION"]).astype(np.float64)
    out = np.zeros_like(pos)
    s = 0
    while f"JOINTS_{s}" in prim["attributes"]:
        J = read_accessor(doc, binary, prim["attributes"][f"JOINTS_{s}"])
        W = read_accessor(doc, binary, prim["attributes"][f"WEIGHTS_{s}"])
        for c in range(4):
            out += W[:, c, None] * (np.einsum("vij,vj->vi", mats[J[:, c]][:, :3, :3], pos) + mats[J[:, c]][:, :3, 3])
        s += 1
    return out


def test_glb_parses_and_skins_to_the_body_vertices(body, motion, tmp_path):
    t = len(motion["pose"])
    rots = np.concatenate([motion["root_rot"][:, None].numpy(), motion["pose"].numpy()], 1)
    path = tmp_path / "m.glb"
    write_glb(path, names=body.joint_names, parents=body.parents, rest_joints=motion["rest"][1].numpy(),
              rest_vertices=motion["rest"][0].numpy(), faces=body.faces.numpy(), weights=body.weights.numpy(),
              num_frames=t, fps=30.0, local_rotations=lambda i: (rots[a : a + 5, i] for a in range(0, t, 5)),
              root_translation=lambda: (motion["root_trans"][a : a + 5].numpy() for a in range(0, t, 5)))
    doc, binary = read_glb(path)
    assert doc["asset"]["version"] == "2.0" and len(doc["skins"][0]["joints"]) == body.num_joints
    times = read_accessor(doc, binary, doc["animations"][0]["samplers"][0]["input"])
    assert np.allclose(times, np.arange(t) / 30)
    for frame in (0, 7, t - 1):
        err = np.linalg.norm(_skin(doc, binary, frame) - motion["vertices"][frame], axis=-1)
        assert err.max() < 1e-3, err.max()
    try:
        import trimesh
    except ImportError:
        return
    scene = trimesh.load(path, force="scene")  # an independent parser accepts the file
    assert sum(len(g.vertices) for g in scene.geometry.values()) == body.num_vertices


def test_npz_stream_writer(tmp_path):
    a = np.arange(60, dtype=np.float32).reshape(20, 3)
    with NpzStreamWriter(tmp_path / "x.npz") as z:
        z.add("name", "anny")
        z.add("names", np.array(["a", "bc"]))
        z.add_chunks("a", a.shape, np.float32, (a[i : i + 7] for i in range(0, 20, 7)))
        z.add_chunks("flags", (20,), np.bool_, [a[:, 0] > 30])
    with np.load(tmp_path / "x.npz") as d:
        assert str(d["name"]) == "anny" and list(d["names"]) == ["a", "bc"]
        assert np.array_equal(d["a"], a) and d["flags"].sum() == 9
    with NpzStreamWriter(tmp_path / "y.npz") as z, pytest.raises(ValueError, match="rows written"):
        z.add_chunks("a", (21, 3), np.float32, [a])


def test_output_dir_is_atomic(tmp_path):
    out = tmp_path / "run"
    od = OutputDir(out)
    (od.path("motion.npz")).write_bytes(b"x")
    assert not out.exists()  # nothing visible before commit
    with pytest.raises(RuntimeError):
        od.commit()
    write_summary(od.path("summary.json"), {"frames": 3})
    od.commit()
    assert read_summary(out) == {"frames": 3, "complete": True} and (out / "motion.npz").is_file()
    od2 = OutputDir(out)  # a re-run replaces the earlier result only on commit
    od2.abort()
    assert read_summary(out)["frames"] == 3 and [p.name for p in tmp_path.iterdir()] == ["run"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("important")
    with pytest.raises(OutputDirError, match="not a moro output"):
        OutputDir(foreign)
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputDirError, match="is a file"):
        OutputDir(tmp_path / "afile")
    json.loads((out / "summary.json").read_text())
