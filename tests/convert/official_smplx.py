"""A fake ``SMPLX_NEUTRAL.npz`` in the real key layout, and a synthetic authors' release whose tokenizer
decodes that model's 9383-vertex body mesh (for the SMPL-X inference path of ``moro infer``).

The SMPL-X file is random but valid (the real keys, dtypes and shapes: 10475 vertices, 20908 faces,
55 joints with SMPL-X's parent list, v1.0-style 20 shape+expression bases, hand PCA keys): a
template of points around a random skeleton (Y up, metres), 1-2 skinning joints per vertex, regressor
rows over a joint's own vertices, pose correctives only where a joint skins. Eyeballs are vertices
9383..10474, skinned to the eye joints only. Written independently of ``moro.body.smpl_files``.

The release (:func:`write_smplx_release`) has the 792 names at the scaled widths of
:class:`official_release.Dims`, but the authors' tokenizer level sizes (9383 -> 2618 -> 546 -> 87,
slot counts of layout 3.2, arbitrary neighbours) so it decodes SMPL-X body meshes. Its values are the
seeded random ones of :func:`official_release.release_state`, except for a few heads set so that the
network's output is person-like and in view (as a trained model's would be):

* tokenizer layer 11 (conv 2618 v, 64 -> 32 at paper size): weights x0.01, bias 1, so its ELU output
  is ~1 in every channel, with a small token-dependent variation;
* tokenizer layer 13 (conv 9383 v -> xyz): basis kernel w (w = 0, 1, 2) maps the all-ones input to
  the unit vector e_w, and slot 0 (the vertex itself) of vertex p has coefficients = vertex p of a
  given local mesh (an SMPL-X body posed by the test, root joint at the origin), so every frame
  decodes to that mesh (+ ~1e-4 relative token-dependent variation);
* the decoder's camera-trajectory head ``d_traj_regressor``: weights x0.01, bias = upright, 3.5 m
  in front of the camera (OpenCV frame);
* ``bm_neutral.bm.{v_template, faces_tensor, shapedirs}``: the fake file's, so the converter's
  body-model fingerprint describes it (the other body buffers keep their small stand-in shapes).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from official_release import Dims, Release, release_shapes, release_state, write_traj_stats

SMPLX_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
                 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]
NO_PARENT = 4294967295  # kintree_table[0, 0] in the official files
NV, NF, BODY, EYE = 10475, 20908, 9383, 546
# upright person 3.5 m in front of an OpenCV camera: R = diag(1, -1, -1) as 6D rows, t
STANDING_TRAJ = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.3, 3.5]
SMPLX_DIMS = replace(Dims.scaled(), tokens=87)  # the authors' 87 tokens (level sizes fix them), scaled widths


def fake_smplx_arrays(seed: int = 0, bases: int = 20) -> dict[str, np.ndarray]:
    """Random valid SMPL-X arrays under the file's key names (``v_template`` (10475, 3) metres, ``f``
    (20908, 3) int32, ``shapedirs`` (10475, 3, bases), ``posedirs`` (10475, 3, 486), ``J_regressor``
    (55, 10475), ``weights`` (10475, 55), ``kintree_table`` (2, 55), hand PCA keys)."""
    rng = np.random.default_rng(seed)
    j = len(SMPLX_PARENTS)
    joints = np.zeros((j, 3))
    joints[0] = (0.0, 0.9, 0.0)
    for k in range(1, j):
        joints[k] = joints[SMPLX_PARENTS[k]] + rng.normal(0, 0.1, 3)
    owners = [k for k in range(j) if k not in (23, 24)]
    home = rng.choice(owners, NV)
    home[: 2 * len(owners)] = np.tile(owners, 2)
    home[BODY:BODY + EYE], home[BODY + EYE:] = 23, 24
    verts = joints[home] + rng.normal(0, 0.03, (NV, 3))
    weights = np.zeros((NV, j))
    w0 = np.where(np.isin(home, (23, 24)), 1.0, rng.uniform(0.5, 1.0, NV))
    weights[np.arange(NV), home] += w0
    weights[np.arange(NV), np.maximum(np.asarray(SMPLX_PARENTS)[home], 0)] += 1 - w0
    jreg = np.zeros((j, NV))
    for k in range(j):
        ids = rng.permutation(np.nonzero(home == k)[0])[:20]
        jreg[k, ids] = rng.uniform(0.1, 1.0, len(ids))
    jreg /= jreg.sum(1, keepdims=True)
    skinned = (weights[:, 1:] > 0)[:, None, :, None]
    posedirs = (0.02 * (rng.random((NV, 3, j - 1, 9)) - 0.5) * skinned).reshape(NV, 3, (j - 1) * 9)
    ne = 2 * (2 * EYE - 4)
    a = np.concatenate([rng.integers(0, BODY - 2, NF - ne), rng.integers(BODY, BODY + EYE - 2, ne // 2),
                        rng.integers(BODY + EYE, NV - 2, ne // 2)])
    return dict(
        v_template=verts, f=np.stack([a, a + 1, a + 2], 1).astype(np.int32),
        shapedirs=0.02 * (rng.random((NV, 3, bases)) - 0.5), posedirs=posedirs, J_regressor=jreg, weights=weights,
        kintree_table=np.stack([[NO_PARENT] + SMPLX_PARENTS[1:], np.arange(j)]).astype(np.int64),
        hands_componentsl=np.eye(45), hands_componentsr=np.eye(45), hands_meanl=np.full(45, 0.1),
        hands_meanr=np.full(45, -0.1),
    )


def write_smplx_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def paper_size_connection_files() -> dict[str, np.ndarray]:
    """Connection files with the authors' level sizes and slot counts (arbitrary neighbours, every slot
    used, slot 0 = the vertex itself on same-size levels), in their file format."""
    from moro.model.summary import official_shape_hierarchy

    return official_shape_hierarchy().to_arrays()


def write_smplx_release(folder: Path, smplx: dict[str, np.ndarray], local_mesh: np.ndarray | None = None,
                        seed: int = 0) -> Release:
    """The scaled 792-key release with 9383-vertex tokenizer levels and person-like heads (module docstring).

    Args:
        folder: where ``last.ckpt``, ``smplx_ConnectionMatrices/`` and ``amass_cum_traj.pkl`` go.
        smplx: :func:`fake_smplx_arrays`.
        local_mesh: (9383, 3) metres, the local mesh every frame decodes to (root joint at the origin,
            no global rotation); None = the rest template minus its pelvis joint.
    """
    folder.mkdir(parents=True, exist_ok=True)
    conn = paper_size_connection_files()
    conn_dir = folder / "smplx_ConnectionMatrices"
    conn_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in conn.items():
        np.save(conn_dir / f"_{name}.npy", rows)
    stats = write_traj_stats(folder / "amass_cum_traj.pkl", seed=seed)
    d = SMPLX_DIMS
    state = release_state(release_shapes(d, conn, body="small"), seed=seed)
    vq, c0 = "vqvae.fully_conv_ae.", d.channels[0]
    state[vq + "weights11"] = 0.01 * state[vq + "weights11"]
    state[vq + "bias11"] = torch.ones_like(state[vq + "bias11"])
    basis = torch.zeros(9, 3, c0)
    for w in range(3):
        basis[w, w] = 1.0 / c0  # kernel w maps the all-ones input to e_w
    state[vq + "weights13"] = basis.reshape(9, 3 * c0)
    state[vq + "bias13"] = torch.zeros(3)
    verts = np.asarray(smplx["v_template"], np.float64)
    pelvis = np.asarray(smplx["J_regressor"])[0] @ verts
    ww = torch.zeros_like(state[vq + "w_weights13"])  # (9383, slots, 9)
    local = verts[:BODY] - pelvis if local_mesh is None else np.asarray(local_mesh, np.float64)
    ww[:, 0, :3] = torch.from_numpy(local).float()
    state[vq + "w_weights13"] = ww
    head = "mask_transformer.dst_former.d_traj_regressor."
    state[head + "weight"] = 0.01 * state[head + "weight"]
    state[head + "bias"] = torch.tensor(STANDING_TRAJ)
    bm = "bm_neutral.bm."
    state[bm + "v_template"] = torch.from_numpy(verts).float()
    state[bm + "faces_tensor"] = torch.from_numpy(np.asarray(smplx["f"], np.int64))
    state[bm + "shapedirs"] = torch.from_numpy(np.asarray(smplx["shapedirs"])[..., :10]).float()
    ckpt = folder / "last.ckpt"
    torch.save({"epoch": 41, "global_step": 1234, "pytorch-lightning_version": "2.5.0", "state_dict": state,
                "loops": {}, "callbacks": {}, "lr_schedulers": [], "optimizer_states": []}, ckpt)
    return Release(folder, ckpt, conn_dir, folder / "amass_cum_traj.pkl", state, conn, stats)


def smplx_target():
    """The scaled target with the authors' tokenizer vertex count (9383): ``official_release.scaled_target``
    with ``num_vertices`` set, so the converter accepts only 9383-vertex connection files."""
    from official_release import scaled_target

    t = scaled_target(SMPLX_DIMS)
    return replace(t, tokenizer=replace(t.tokenizer, num_vertices=BODY))
