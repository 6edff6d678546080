"""SMPL-X / SMPL from user files, on synthetic model files with the real keys, dtypes and shapes.

The files are random but valid: a template of points around a random skeleton, 1-2 skinning
joints per vertex (rows sum to 1), regressor rows over a joint's own vertices (rows sum to 1),
pose correctives only on the vertices a joint skins, the real SMPL / SMPL-X parent lists.
SMPL-X eyeballs are vertices 9383..10474 (546 each), skinned to the eye joints only.
"""

from __future__ import annotations

import pickle
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse
import torch

from moro.body import BodyModelFileError, BodyModelNotFoundError, find_body_model_file, load_smpl, load_smplx
from moro.body import smpl_files
from moro.body.joint_sets import COCO17, SMPL_FOOT_VERTICES, SMPLX_COCO_FACE_VERTICES
from moro.geometry import rotvec_to_rotmat, rotz

# The real kinematic trees (kintree_table[0]), written out independently of the module under test.
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
SMPLX_PARENTS = SMPL_PARENTS[:22] + [15, 15, 15] + [
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
]
NO_PARENT = 4294967295  # kintree_table[0, 0] in the official files
BODY, EYE = 9383, 546


def _arrays(kind: str, s: int, seed: int) -> dict:
    """Random valid model arrays in the file layout of ``kind``."""
    rng = np.random.default_rng(seed)
    parents = SMPLX_PARENTS if kind == "smplx" else SMPL_PARENTS
    nv, nf = (10475, 20908) if kind == "smplx" else (6890, 13776)
    j = len(parents)
    joints = np.zeros((j, 3))
    joints[0] = (0.0, 0.9, 0.0)
    for k in range(1, j):
        joints[k] = joints[parents[k]] + rng.normal(0, 0.1, 3)
    # Each vertex has a home joint; SMPL-X body vertices never the eyes, eyeball vertices only them.
    owners = [k for k in range(j) if kind == "smpl" or k not in (23, 24)]
    home = rng.choice(owners, nv)
    home[: 2 * len(owners)] = np.tile(owners, 2)  # every joint owns vertices
    if kind == "smplx":
        home[BODY:BODY + EYE], home[BODY + EYE:] = 23, 24
    verts = joints[home] + rng.normal(0, 0.03, (nv, 3))
    weights = np.zeros((nv, j))
    w0 = np.where(np.isin(home, (23, 24)) & (kind == "smplx"), 1.0, rng.uniform(0.5, 1.0, nv))
    weights[np.arange(nv), home] += w0
    weights[np.arange(nv), np.maximum(np.asarray(parents)[home], 0)] += 1 - w0
    jreg = np.zeros((j, nv))
    for k in range(j):
        ids = rng.permutation(np.nonzero(home == k)[0])[:20]
        jreg[k, ids] = rng.uniform(0.1, 1.0, len(ids))
    jreg /= jreg.sum(1, keepdims=True)
    skinned = (weights[:, 1:] > 0)[:, None, :, None]  # correctives only where a joint skins
    posedirs = (0.02 * (rng.random((nv, 3, j - 1, 9)) - 0.5) * skinned).reshape(nv, 3, (j - 1) * 9)
    if kind == "smplx":
        ne = 2 * (2 * EYE - 4)  # closed eyeball meshes: 2v - 4 faces each
        a = np.concatenate([rng.integers(0, BODY - 2, nf - ne), rng.integers(BODY, BODY + EYE - 2, ne // 2),
                            rng.integers(BODY + EYE, nv - 2, ne // 2)])
    else:
        a = rng.integers(0, nv - 2, nf)
    return dict(
        v_template=verts, f=np.stack([a, a + 1, a + 2], 1).astype(np.int32 if kind == "smplx" else np.uint32),
        shapedirs=0.02 * (rng.random((nv, 3, s)) - 0.5), posedirs=posedirs, J_regressor=jreg,
        weights=weights, kintree_table=np.stack([[NO_PARENT] + parents[1:], np.arange(j)]).astype(np.int64),
    )


def _write_smplx(path, arrays: dict) -> None:
    extra = dict(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45), hands_meanl=np.full(45, 0.1),
                 hands_meanr=np.full(45, -0.1), part2num=np.array({"body": 0}, dtype=object))
    np.savez(path, **arrays, **extra)


def _write_smpl(path, arrays: dict) -> None:
    """Official layout: shapedirs as a chumpy object, J_regressor as a scipy csc matrix."""
    mod, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})
    ch.Ch = Ch
    shapedirs = Ch()
    shapedirs.x = arrays["shapedirs"]
    data = {**arrays, "shapedirs": shapedirs, "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
            "bs_style": "lbs", "bs_type": "lrotmin"}
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": mod, "chumpy.ch": ch})
    try:
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real user files or caches: every place moro looks is an empty temporary directory."""
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MORO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MORO_BODY_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    smplx, smpl = _arrays("smplx", 20, 0), _arrays("smpl", 10, 1)  # SMPL-X v1.0 layout: 10 + 10 bases
    _write_smplx(root / "SMPLX_NEUTRAL.npz", smplx)
    _write_smpl(root / "SMPL_NEUTRAL.pkl", smpl)
    return SimpleNamespace(root=root, smplx=root / "SMPLX_NEUTRAL.npz", smpl=root / "SMPL_NEUTRAL.pkl",
                           arrays={"smplx": smplx, "smpl": smpl})


@pytest.fixture(scope="module")
def models(files, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MORO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return {"smplx": load_smplx(files.smplx).double(), "smpl": load_smpl(files.smpl).double(),
                "smplx_body": load_smplx(files.smplx, body_only=True).double()}


def _random_pose(model, batch, gen, scale=0.4):
    return rotvec_to_rotmat(scale * torch.randn(*batch, model.num_joints - 1, 3, generator=gen, dtype=torch.float64))


def _descendants(parents, k):
    out = {k}
    for j, p in enumerate(parents):
        if p in out:
            out.add(j)
    return sorted(out)


KINDS = ["smplx", "smpl"]


@pytest.mark.parametrize("kind", KINDS)
def test_zero_pose_reproduces_template_and_shape_space(kind, files, models):
    model, a = models[kind], files.arrays[kind]
    v_t, jreg = torch.from_numpy(a["v_template"]), torch.from_numpy(a["J_regressor"])
    gen = torch.Generator().manual_seed(3)
    for betas in (torch.zeros(10, dtype=torch.float64), 0.5 * torch.randn(10, generator=gen, dtype=torch.float64)):
        shaped = v_t + torch.from_numpy(a["shapedirs"][..., :10]) @ betas  # first 10 bases, never expression
        out = model(model.identity_pose(dtype=torch.float64), betas, root_trans=model.root_joint_rest(betas))
        torch.testing.assert_close(out.vertices, shaped, atol=1e-6, rtol=0)
        torch.testing.assert_close(out.joints, jreg @ shaped, atol=1e-6, rtol=0)
    assert model.parents == (SMPLX_PARENTS if kind == "smplx" else SMPL_PARENTS)
    assert len(model.joint_names) == model.num_joints and model.name == f"{kind}/neutral"
    assert model.faces.shape == (20908 if kind == "smplx" else 13776, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_rotating_one_joint_moves_only_the_vertices_it_skins(kind, files, models):
    model, gen = models[kind], torch.Generator().manual_seed(0)
    betas = torch.randn(10, generator=gen, dtype=torch.float64)
    for k in (4, 18):  # left knee, left elbow
        pose = model.identity_pose(dtype=torch.float64)
        pose[k - 1] = rotvec_to_rotmat(torch.tensor([0.3, -0.5, 0.4], dtype=torch.float64))
        rest = model(model.identity_pose(dtype=torch.float64), betas).vertices
        moved = (model(pose, betas).vertices - rest).norm(dim=-1) > 1e-12
        skinned = files.arrays[kind]["weights"][:, _descendants(model.parents, k)].sum(1) > 0
        assert moved.numpy().tolist() == skinned.tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_one_by_one(kind, models):
    model, gen = models[kind], torch.Generator().manual_seed(1)
    pose = _random_pose(model, (3,), gen)
    betas = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    root_rot = rotvec_to_rotmat(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    root_trans = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    out = model(pose, betas, root_rot, root_trans)
    for i in range(3):
        one = model(pose[i], betas[i], root_rot[i], root_trans[i])
        torch.testing.assert_close(out.vertices[i], one.vertices, atol=1e-12, rtol=0)
        torch.testing.assert_close(out.joints[i], one.joints, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_float64(kind, models):
    """Gradients w.r.t. body_pose (3 joints of a batch of 2) and betas match finite differences.

    fast_mode compares random projections v^T J u (the full Jacobian takes tens of seconds).
    """
    model, gen = models[kind], torch.Generator().manual_seed(2)
    base = _random_pose(model, (2,), gen)
    joints, verts = [3, 17, 20], torch.arange(0, model.num_vertices, model.num_vertices // 12)
    sub = base[:, [j - 1 for j in joints]].clone().requires_grad_(True)
    betas = (0.3 * torch.randn(2, 10, generator=gen, dtype=torch.float64)).requires_grad_(True)

    def f(sub, betas):
        pose = base.clone()
        pose[:, [j - 1 for j in joints]] = sub
        out = model(pose, betas)
        return out.vertices[:, verts], out.joints[:, :22]

    assert torch.autograd.gradcheck(f, (sub, betas), eps=1e-6, atol=1e-5, fast_mode=True)


def _naive_lbs(a: dict, pose: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Test oracle: the smplx package's ``lbs()`` on the file arrays, loop by loop, float64.

    pose: (j, 3, 3) with the root's rotation first. Returns vertices (v, 3) and joints (j, 3),
    both shifted so that the root joint is at the origin (moro's local mesh).
    """
    parents = [-1] + a["kintree_table"][0, 1:].tolist()
    v = a["v_template"] + a["shapedirs"][..., : len(betas)] @ betas
    joints = a["J_regressor"] @ v
    p = a["posedirs"].shape[-1]
    feat = (pose[1:] - np.eye(3)).reshape(-1)
    v = v + (feat @ a["posedirs"].reshape(-1, p).T).reshape(-1, 3)
    world = np.zeros((len(parents), 4, 4))
    for k, par in enumerate(parents):
        local = np.eye(4)
        local[:3, :3], local[:3, 3] = pose[k], joints[k] - (joints[par] if par >= 0 else 0)
        world[k] = local if par < 0 else world[par] @ local
    rel = world.copy()
    rel[:, :3, 3] -= np.einsum("jab,jb->ja", world[:, :3, :3], joints)
    blend = np.einsum("vj,jab->vab", a["weights"], rel)
    verts = np.einsum("vab,vb->va", blend[:, :3, :3], v) + blend[:, :3, 3]
    return verts - world[0, :3, 3], world[:, :3, 3] - world[0, :3, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_a_naive_smplx_package_lbs(kind, files, models):
    model, gen = models[kind], torch.Generator().manual_seed(6)
    pose, betas = _random_pose(model, (), gen, scale=0.6), torch.randn(10, generator=gen, dtype=torch.float64)
    out = model(pose, betas)
    full = np.concatenate([np.eye(3)[None], pose.numpy()])
    verts, joints = _naive_lbs(files.arrays[kind], full, betas.numpy())
    np.testing.assert_allclose(out.vertices.numpy(), verts, atol=1e-5)
    np.testing.assert_allclose(out.joints.numpy(), joints, atol=1e-5)


def test_pose_correctives_match_the_smplx_package_layout(files, tmp_path):
    """posedirs only on joint k, whose skinning weight (and its descendants') goes to the root.

    Rotating joint k then moves vertices by the pose correctives alone. About z by angle a,
    ``R - I`` has (0,0) = (1,1) = cos a - 1, (0,1) = -sin a, (1,0) = sin a; the file's column
    ``9 (k-1) + 3 r + c`` multiplies entry (r, c) (the smplx package's
    ``feat @ reshape(posedirs, (-1, p)).T``). A column-major or joint-shifted reading fails.
    """
    a = dict(files.arrays["smpl"])
    nv, k, angle = a["v_template"].shape[0], 16, 0.7  # left shoulder: no foot vertex moves
    sub = _descendants(SMPL_PARENTS, k)
    a["weights"] = a["weights"].copy()
    a["weights"][:, 0] += a["weights"][:, sub].sum(1)
    a["weights"][:, sub] = 0
    block = np.random.default_rng(7).normal(0, 0.02, (nv, 3, 9))
    a["posedirs"] = np.zeros_like(a["posedirs"])
    a["posedirs"][:, :, 9 * (k - 1): 9 * k] = block
    _write_smpl(tmp_path / "m.pkl", a)
    model = load_smpl(tmp_path / "m.pkl").double()
    zero = model.zero_betas(dtype=torch.float64)
    rest = model(model.identity_pose(dtype=torch.float64), zero).vertices

    pose = model.identity_pose(dtype=torch.float64)
    pose[k - 1] = rotz(angle, dtype=torch.float64)
    c, s = np.cos(angle) - 1, np.sin(angle)
    expected = c * (block[..., 0] + block[..., 4]) + s * (block[..., 3] - block[..., 1])
    np.testing.assert_allclose((model(pose, zero).vertices - rest).numpy(), expected, atol=1e-6)

    pose[k - 1] = rotvec_to_rotmat(torch.tensor([0.4, -0.9, 0.3], dtype=torch.float64))
    feat = (pose - torch.eye(3, dtype=torch.float64)).reshape(-1).numpy()
    expected = (feat @ a["posedirs"].reshape(-1, a["posedirs"].shape[-1]).T).reshape(nv, 3)
    np.testing.assert_allclose((model(pose, zero).vertices - rest).numpy(), expected, atol=1e-6)


def test_smplx_body_only_cut(files, models):
    full, body = models["smplx"], models["smplx_body"]
    assert body.num_vertices == BODY and body.name == "smplx/neutral/body"
    assert body.faces.shape == (20908 - 2 * (2 * EYE - 4), 3) and int(body.faces.max()) < BODY
    torch.testing.assert_close(body.j_template, full.j_template)  # joints from the full mesh
    gen = torch.Generator().manual_seed(5)
    pose, betas = _random_pose(full, (2,), gen), torch.randn(2, 10, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(body(pose, betas).vertices, full(pose, betas).vertices[:, :BODY], atol=1e-12, rtol=0)
    torch.testing.assert_close(body.joints22_regressor, full.joints22_regressor[:, :BODY])
    eyes = [COCO17.index(n) for n in ("left_eye", "right_eye")]
    assert all(SMPLX_COCO_FACE_VERTICES[COCO17[i]] >= BODY for i in eyes)  # the case being tested
    keep = [i for i in range(17) if i not in eyes]
    torch.testing.assert_close(body.coco17_regressor[keep], full.coco17_regressor[keep, :BODY])
    reg = body.coco17_regressor[eyes]
    assert (reg >= -1e-7).all() and torch.allclose(reg.sum(1), torch.ones(2, dtype=torch.float64), atol=1e-6)
    assert body.foot_vertices.tolist() == full.foot_vertices.tolist()
    with pytest.raises(ValueError, match="body_only"):
        smpl_files.build_smpl_data(files.smpl, "smpl", body_only=True)


def test_regressors_and_foot_vertices(files, models):
    for kind in KINDS:
        model, a = models[kind], files.arrays[kind]
        np.testing.assert_allclose(model.joints22_regressor.numpy(), a["J_regressor"][:22], atol=1e-7)
        np.testing.assert_allclose(model.coco17_regressor.sum(1).numpy(), 1.0, atol=1e-6)
        knee = model.coco17_regressor[COCO17.index("left_knee")].numpy()
        np.testing.assert_allclose(knee, a["J_regressor"][4], atol=1e-7)
    assert models["smpl"].foot_vertices.tolist() == list(SMPL_FOOT_VERTICES)
    feet = models["smplx"].foot_vertices.numpy()  # picked: L heel, L toe, R heel, R toe
    dominant = files.arrays["smplx"]["weights"].argmax(1)
    assert set(dominant[feet[:2]]) <= {7, 10} and set(dominant[feet[2:]]) <= {8, 11}
    z = files.arrays["smplx"]["v_template"][feet, 2]
    assert z[0] < z[1] and z[2] < z[3]


def test_lookup_order(tmp_path, monkeypatch):
    explicit, env, cwd_dir, data = (tmp_path / n for n in ("explicit", "env", "body_models", "data/body_models"))
    for d in (explicit, env, cwd_dir, data):
        (d / "smplx").mkdir(parents=True)
        (d / "smplx" / "SMPLX_NEUTRAL.npz").write_bytes(b"")
    monkeypatch.setenv("MORO_BODY_MODELS", str(env))
    assert find_body_model_file("smplx", path=explicit) == explicit / "smplx/SMPLX_NEUTRAL.npz"
    assert find_body_model_file("smplx") == env / "smplx/SMPLX_NEUTRAL.npz"
    (env / "smplx/SMPLX_NEUTRAL.npz").unlink()
    assert find_body_model_file("smplx") == cwd_dir / "smplx/SMPLX_NEUTRAL.npz"
    monkeypatch.delenv("MORO_BODY_MODELS")
    (cwd_dir / "smplx/SMPLX_NEUTRAL.npz").unlink()
    assert find_body_model_file("smplx") == data / "smplx/SMPLX_NEUTRAL.npz"
    # Preferred names, genders, and an explicit file of any name.
    (data / "SMPLX_NEUTRAL.npz").write_bytes(b"")
    assert find_body_model_file("smplx") == data / "SMPLX_NEUTRAL.npz"
    for gender, name in (("neutral", "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"),
                         ("female", "basicModel_f_lbs_10_207_0_v1.0.0.pkl"), ("male", "smpl/SMPL_MALE.npz")):
        (cwd_dir / name).parent.mkdir(exist_ok=True)
        (cwd_dir / name).write_bytes(b"")
        assert find_body_model_file("smpl", gender) == cwd_dir / name
    (tmp_path / "my_model.npz").write_bytes(b"")
    assert find_body_model_file("smplx", path="my_model.npz") == tmp_path / "my_model.npz"
    with pytest.raises(ValueError, match="gender"):
        find_body_model_file("smplx", "other")
    with pytest.raises(ValueError, match="kind"):
        find_body_model_file("smplh")


def test_missing_file_error_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("MORO_BODY_MODELS", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_smplx()
    err, msg = info.value, str(info.value)
    assert isinstance(err, BodyModelNotFoundError)
    for place in (tmp_path / "env", tmp_path / "body_models", tmp_path / "data" / "body_models"):
        assert f"{place}/SMPLX_NEUTRAL.npz" in msg and f"{place}/smplx/SMPLX_NEUTRAL.pkl" in msg
    assert err.searched and all(p.is_absolute() and str(p) in msg for p in err.searched)
    assert "smpl-x.is.tue.mpg.de" in msg and "MORO_BODY_MODELS" in msg and "path=" in msg
    # An explicit path is the only place searched: never silently replaced by another file.
    (tmp_path / "body_models").mkdir()
    (tmp_path / "body_models" / "SMPL_NEUTRAL.pkl").write_bytes(b"")
    with pytest.raises(BodyModelNotFoundError, match="smpl.is.tue.mpg.de") as info:
        find_body_model_file("smpl", path=tmp_path / "nowhere")
    assert all(str(p).startswith(str(tmp_path / "nowhere")) for p in info.value.searched)


def _corrupt(a: dict, change: str, key: str) -> dict:
    a = dict(a)
    if change == "missing":
        del a[key]
    elif change == "shape":
        a[key] = a[key][:, :-1]
    elif change == "dtype":
        a[key] = a[key].astype(np.float64 if key == "f" else np.int64)
    elif change == "nan":
        a[key] = a[key].copy()
        a[key][3, 1, 2] = np.nan
    elif change == "parents":
        a[key] = a[key].copy()
        a[key][0, 5] = 1
    elif change == "rows":
        a[key] = 2 * a[key]
    elif change == "bases":
        a[key] = np.concatenate([a[key], a[key][..., :10]], -1)  # 30 bases
    return a


@pytest.mark.parametrize("change, key, expected", [
    ("missing", "posedirs", "missing key"),
    ("shape", "weights", r"shape \(6890, 24\)"),
    ("dtype", "f", "an integer array, found dtype float64"),
])
def test_bad_smpl_file_names_the_key(change, key, expected, files, tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, **_corrupt(files.arrays["smpl"], change, key))
    with pytest.raises(BodyModelFileError, match=expected) as info:
        load_smpl(path)
    assert str(path) in str(info.value) and repr(key) in str(info.value)


@pytest.mark.parametrize("kind, change, key, expected", [
    ("smpl", "dtype", "v_template", "a floating-point array, found dtype int64"),
    ("smpl", "nan", "shapedirs", "NaN"),
    ("smpl", "parents", "kintree_table", "parents"),
    ("smpl", "rows", "weights", "sum to 1"),
    ("smplx", "shape", "posedirs", r"shape \(10475, 3, 486\)"),
    ("smplx", "bases", "shapedirs", "must have 400 .* or 20 .* found 30"),
])
def test_bad_contents_name_the_key(kind, change, key, expected, files, monkeypatch):
    """The same validation on in-memory contents (writing full-size files is slow)."""
    a = _corrupt(files.arrays[kind], change, key)
    monkeypatch.setattr(smpl_files, "_load_raw", lambda path, keys: {k: a[k] for k in keys if k in a})
    with pytest.raises(BodyModelFileError, match=expected) as info:
        smpl_files.build_smpl_data("model.npz", kind)
    assert "model.npz" in str(info.value) and repr(key) in str(info.value)


def test_smplx_v11_shape_split_and_wrong_kind(files, monkeypatch):
    """SMPL-X v1.1 files carry 300 shape + 100 expression bases (v1.0: 10 + 10, the fixture file);
    an SMPL-X file is not SMPL. In memory: a 400-basis file is 100 MB more to write."""
    shapedirs = np.random.default_rng(8).random((10475, 3, 400)) - 0.5
    a = dict(files.arrays["smplx"], shapedirs=shapedirs)
    with monkeypatch.context() as m:
        m.setattr(smpl_files, "_load_raw", lambda path, keys: {k: a[k] for k in keys})
        data = smpl_files.build_smpl_data("SMPLX_NEUTRAL.npz", "smplx", num_betas=16)
        np.testing.assert_allclose(data.shapedirs.numpy(), shapedirs[..., :16])
        j_shapedirs = np.einsum("jv,vcs->jcs", a["J_regressor"], shapedirs[..., :16])
        np.testing.assert_allclose(data.j_shapedirs.numpy(), j_shapedirs)
        assert data.meta["shape_bases_in_file"] == 300
        with pytest.raises(ValueError, match=r"num_betas must be an int in 1\.\.300"):
            smpl_files.build_smpl_data("SMPLX_NEUTRAL.npz", "smplx", num_betas=301)
        with pytest.raises(BodyModelFileError, match=r"'v_template' must have shape \(6890, 3\).*use load_smplx"):
            smpl_files.read_smpl_file("SMPLX_NEUTRAL.npz")
        a["shapedirs"] = files.arrays["smplx"]["shapedirs"]  # v1.0
        with pytest.raises(ValueError, match=r"num_betas must be an int in 1\.\.10"):
            smpl_files.build_smpl_data("SMPLX_NEUTRAL.npz", "smplx", num_betas=11)


def test_unreadable_or_foreign_files(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(BodyModelFileError, match="not a readable .npz"):
        load_smplx(tmp_path / "broken.npz")
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(BodyModelFileError, match="not a readable .pkl"):
        load_smpl(tmp_path / "broken.pkl")
    (tmp_path / "model.obj").write_bytes(b"")
    with pytest.raises(BodyModelFileError, match="expected .npz or .pkl"):
        load_smplx(tmp_path / "model.obj")


def test_cache_round_trip(files, tmp_path, monkeypatch):
    first = load_smpl(files.smpl)
    cached = sorted((tmp_path / "cache" / "body").glob("smpl-neutral-b10-*.safetensors"))
    assert len(cached) == 1

    def fail(*args, **kwargs):
        raise AssertionError("converted instead of reading the cache")

    with monkeypatch.context() as m:
        m.setattr(smpl_files, "build_smpl_data", fail)
        second = load_smpl(files.smpl)
        with pytest.raises(AssertionError, match="converted"):
            load_smpl(files.smpl, rebuild=True)
    for name, buf in first.named_buffers():
        assert torch.equal(buf, dict(second.named_buffers())[name]), name
    assert (second.name, second.parents, second.joint_names) == (first.name, first.parents, first.joint_names)
    assert second.meta["source"] == str(files.smpl) and second.meta["num_betas"] == 10
    assert load_smpl(files.smpl, num_betas=5).num_betas == 5  # other options, another file
    assert len(list((tmp_path / "cache" / "body").glob("smpl-neutral-*.safetensors"))) == 2
    cached[0].write_bytes(b"truncated")  # a damaged cache file is rebuilt, not trusted
    assert torch.equal(load_smpl(files.smpl).v_template, first.v_template)
