"""Building vertex regressors, transferring them across topologies, and picking foot vertices.

Used when a body model is built (once, then cached); nothing here runs at inference time.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls


def fit_vertex_regressor(
    vertices: np.ndarray,
    targets: np.ndarray,
    candidates: np.ndarray,
    ridge: float = 1e-4,
    sum_weight: float = 1e3,
) -> np.ndarray:
    """Convex weights over candidate vertices that reproduce a target point across samples.

    Solves ``min_w sum_s ||sum_i w_i v_si - x_s||^2 + ridge ||w||^2`` with ``w >= 0`` and
    ``sum w = 1`` (enforced by a heavily weighted extra row), by non-negative least squares.

    Args:
        vertices: (n_samples, v, 3) posed/shaped meshes, metres.
        targets: (n_samples, 3) the point to reproduce in each sample.
        candidates: (c,) vertex ids allowed to carry weight.
    Returns:
        (v,) weights, zero outside ``candidates``, summing to 1.
    """
    n = vertices.shape[0]
    a = vertices[:, candidates, :].transpose(0, 2, 1).reshape(n * 3, len(candidates))  # (n*3, c)
    b = targets.reshape(n * 3)
    scale = np.sqrt(n * 3)
    a = np.concatenate([a / scale, np.sqrt(ridge) * np.eye(len(candidates)), sum_weight * np.ones((1, len(candidates)))])
    b = np.concatenate([b / scale, np.zeros(len(candidates)), [sum_weight]])
    w, _ = nnls(a, b, maxiter=50 * len(candidates))
    out = np.zeros(vertices.shape[1])
    out[candidates] = w / w.sum()
    return out


def nearest_vertices(points: np.ndarray, vertices: np.ndarray, k: int) -> np.ndarray:
    """Ids (m, k) of the k rest vertices (v, 3) nearest to each of the points (m, 3)."""
    d = np.linalg.norm(vertices[None, :, :] - points[:, None, :], axis=-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def closest_point_on_triangles(points: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of each triangle to each point, with barycentric coordinates.

    Args:
        points: (n, 3).
        tri: (n, m, 3, 3) m candidate triangles (corners a, b, c) per point.
    Returns:
        closest points (n, m, 3) and barycentric weights (n, m, 3) of (a, b, c).
    """
    p = points[:, None, :]
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    eps = 1e-18
    # Start from the interior solution, then overwrite by Voronoi region (Ericson, RTCD 5.1.5).
    denom = va + vb + vc
    v = vb / np.where(np.abs(denom) < eps, eps, denom)
    w = vc / np.where(np.abs(denom) < eps, eps, denom)
    bary = np.stack([1 - v - w, v, w], -1)

    def put(mask, weights):
        bary[mask] = weights[mask] if weights.ndim == bary.ndim else weights

    t_bc = (d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), eps)
    put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([0 * t_bc, 1 - t_bc, t_bc], -1))
    t_ac = d2 / np.where(np.abs(d2 - d6) < eps, eps, d2 - d6)
    put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t_ac, 0 * t_ac, t_ac], -1))
    t_ab = d1 / np.where(np.abs(d1 - d3) < eps, eps, d1 - d3)
    put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t_ab, t_ab, 0 * t_ab], -1))
    put((d6 >= 0) & (d5 <= d6), np.array([0.0, 0.0, 1.0]))
    put((d3 >= 0) & (d4 <= d3), np.array([0.0, 1.0, 0.0]))
    put((d1 <= 0) & (d2 <= 0), np.array([1.0, 0.0, 0.0]))
    closest = (bary[..., None] * tri).sum(-2)
    return closest, bary


def transfer_regressor(
    regressor: np.ndarray,
    src_vertices: np.ndarray,
    dst_vertices: np.ndarray,
    dst_faces: np.ndarray,
    candidates: int = 24,
) -> np.ndarray:
    """Move a vertex regressor onto another topology of the same surface.

    Each source vertex carrying weight is replaced by the barycentric combination of the
    closest point on the destination surface (closest-surface barycentric mapping). The search
    covers every triangle touching the ``candidates`` destination vertices nearest to it.

    Args:
        regressor: (k, v_src) weights.
        src_vertices: (v_src, 3) rest mesh of the source topology.
        dst_vertices: (v_dst, 3) rest mesh of the destination topology, same shape and frame.
        dst_faces: (f, 3) destination triangles.
    Returns:
        (k, v_dst) weights; row sums are preserved.
    """
    used = np.nonzero(np.abs(regressor).sum(0) > 0)[0]
    near = nearest_vertices(src_vertices[used], dst_vertices, min(candidates, len(dst_vertices)))
    incident = [[] for _ in range(len(dst_vertices))]
    for f, face in enumerate(dst_faces):
        for vid in face:
            incident[vid].append(f)
    cand = [sorted({f for vid in row for f in incident[vid]}) for row in near]
    m = max(len(c) for c in cand)
    cand = np.array([c + [c[0]] * (m - len(c)) for c in cand])  # (u, m) padded by repetition
    closest, bary = closest_point_on_triangles(src_vertices[used], dst_vertices[dst_faces[cand]])
    best = np.argmin(np.linalg.norm(closest - src_vertices[used][:, None], axis=-1), axis=1)
    rows = np.arange(len(used))
    tri, bary = dst_faces[cand[rows, best]], bary[rows, best]
    mapping = np.zeros((len(used), len(dst_vertices)))
    for r in range(3):
        np.add.at(mapping, (rows, tri[:, r]), bary[:, r])
    return regressor[:, used] @ mapping


def pick_foot_vertices(
    vertices: np.ndarray, weights: np.ndarray, left_joints: list[int], right_joints: list[int]
) -> np.ndarray:
    """Heel and toe-tip vertices of each foot on a rest mesh in the canonical frame.

    The canonical frame is Y up, facing +Z. Per foot, among the vertices skinned mostly to
    ``*_joints`` and lying within 2 cm of the sole, the heel is the one furthest back (min z)
    and the toe the one furthest forward (max z).

    Args:
        vertices: (v, 3) rest vertices.
        weights: (v, j) skinning weights.
    Returns:
        (4,) int64 ids: L heel, L toe, R heel, R toe.
    """
    dominant = weights.argmax(1)
    out = []
    for joints in (left_joints, right_joints):
        ids = np.nonzero(np.isin(dominant, joints))[0]
        if len(ids) == 0:
            raise ValueError(f"no vertex is skinned mostly to foot joints {joints}")
        sole = ids[vertices[ids, 1] < vertices[ids, 1].min() + 0.02]
        out += [sole[np.argmin(vertices[sole, 2])], sole[np.argmax(vertices[sole, 2])]]
    return np.asarray(out, dtype=np.int64)

