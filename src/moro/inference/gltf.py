"""Animated GLB export (glTF 2.0 binary) of the fitted body: a skinned mesh on the body model's rig.

What the file holds (one scene, world frame: Y up, ground y = 0, metres, like glTF itself):

* a **skeleton** of one node per rig joint (Anny: 36 joints, names as in the body model), the
  root's children nested as in the model; each node's rest translation is its bone offset
  ``J_rest[i] - J_rest[parent]`` of the fitted shape and its rest rotation is identity
  (the body model's rest pose, A-pose for Anny);
* a **skinned mesh** in that rest pose (positions = the shaped template, normals, triangles)
  with the model's linear-blend weights, in as many ``JOINTS_n`` / ``WEIGHTS_n`` sets of 4
  as the model needs (Anny: 3 sets, exact; most viewers read the first set only), and
  inverse bind matrices ``translate(-J_rest[i])``;
* one **animation** ("motion"): per joint a rotation channel (the parent-relative rotations
  ``body_pose``; the root gets its world orientation), and a translation channel on the root
  (the root joint's world position), sampled at ``i / fps`` seconds, LINEAR.

Skinning this file reproduces the body model's vertices exactly when the model has no pose
correctives (Anny); SMPL-family models lose their pose blend shapes (a few mm), which glTF
skinning cannot express. The binary buffer is written in streamed pieces, so a long motion never
sits in memory: the writer takes per-joint sources that yield chunks of frames.

:func:`read_glb` / :func:`read_accessor` read such files back (tests, debugging).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["write_glb", "read_glb", "read_accessor", "vertex_normals", "quaternions_xyzw"]

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
FLOAT, USHORT, UINT = 5126, 5123, 5125
TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
NUMPY = {FLOAT: np.float32, USHORT: np.uint16, UINT: np.uint32}
COUNT = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(v, 3) float32 unit normals: area-weighted face normals summed per vertex."""
    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


def quaternions_xyzw(R: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Rotation matrices (t, 3, 3) -> unit quaternions (t, 4) xyzw, signs chosen for continuity
    over time (and with ``previous`` (4,), the quaternion of the frame before)."""
    import torch

    from moro.geometry import rotmat_to_quat_xyzw

    q = rotmat_to_quat_xyzw(torch.as_tensor(np.asarray(R, np.float64))).numpy()
    ref = previous
    for i in range(len(q)):
        if ref is not None and q[i] @ ref < 0:
            q[i] = -q[i]
        ref = q[i]
    return q


class _Buffer:
    """Pieces of the BIN chunk: known sizes up front, bytes produced later (streaming)."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, Callable[[], Iterator[bytes]]]] = []
        self.size = 0
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, nbytes: int, produce: Callable[[], Iterator[bytes]], target: int | None = None) -> int:
        pad = (-self.size) % 4
        if pad:
            self.pieces.append((pad, lambda pad=pad: iter([b"\0" * pad])))
            self.size += pad
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": nbytes}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.pieces.append((nbytes, produce))
        self.size += nbytes
        return len(self.views) - 1

    def array(self, a: np.ndarray, target: int | None = None, minmax: bool = False) -> int:
        """An accessor over an in-memory array (n, c) or (n,)."""
        a = np.ascontiguousarray(a)
        comp = {np.dtype(np.float32): FLOAT, np.dtype(np.uint16): USHORT, np.dtype(np.uint32): UINT}[a.dtype]
        view = self.add(a.nbytes, lambda a=a: iter([a.tobytes()]), target)
        width = 1 if a.ndim == 1 else int(np.prod(a.shape[1:]))
        acc = {"bufferView": view, "componentType": comp, "count": len(a), "type": TYPES[width]}
        if minmax:
            flat = a.reshape(len(a), -1)
            acc["min"], acc["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def stream(self, count: int, width: int, chunks: Callable[[], Iterable[np.ndarray]]) -> int:
        """A float32 accessor of ``count`` rows of ``width`` values produced chunk by chunk."""
        view = self.add(count * width * 4, lambda: (np.ascontiguousarray(c, np.float32).tobytes() for c in chunks()))
        self.accessors.append({"bufferView": view, "componentType": FLOAT, "count": count, "type": TYPES[width]})
        return len(self.accessors) - 1


def write_glb(
    path: str | os.PathLike,
    *,
    names: list[str],
    parents: list[int],
    rest_joints: np.ndarray,
    rest_vertices: np.ndarray,
    faces: np.ndarray,
    weights: np.ndarray,
    num_frames: int,
    fps: float,
    local_rotations: Callable[[int], Iterable[np.ndarray]],
    root_translation: Callable[[], Iterable[np.ndarray]],
) -> None:
    """Write the GLB of the module docstring.

    Args:
        names, parents: the rig (j joints; ``parents[0] == -1``, parents before children).
        rest_joints: (j, 3) rest joint positions of the fitted shape, metres.
        rest_vertices: (v, 3) rest mesh of the fitted shape; faces: (f, 3); weights: (v, j) LBS weights.
        num_frames, fps: animation length and rate.
        local_rotations: ``local_rotations(i)`` yields chunks (c, 3, 3) of joint i's parent-relative
            rotation over all frames in order (joint 0: the root's world orientation).
        root_translation: yields chunks (c, 3) of the root joint's world position.
    """
    j = len(names)
    rest_joints = np.asarray(rest_joints, np.float64)
    weights = np.asarray(weights, np.float64)
    buf = _Buffer()
    # mesh
    pos = buf.array(np.asarray(rest_vertices, np.float32), 34962, minmax=True)
    nrm = buf.array(vertex_normals(rest_vertices, faces), 34962)
    idx = buf.array(np.asarray(faces, np.uint32).reshape(-1), 34963)
    order = np.argsort(-weights, axis=1, kind="stable")
    sets = max(1, int(np.ceil((weights > 0).sum(1).max() / 4)))
    attrs = {"POSITION": pos, "NORMAL": nrm}
    total = np.take_along_axis(weights, order[:, : 4 * sets], 1).sum(1, keepdims=True)
    for s in range(sets):
        cols = order[:, 4 * s : 4 * s + 4]
        w = np.take_along_axis(weights, cols, 1) / np.maximum(total, 1e-12)
        attrs[f"JOINTS_{s}"] = buf.array(np.where(w > 0, cols, 0).astype(np.uint16), 34962)
        attrs[f"WEIGHTS_{s}"] = buf.array(w.astype(np.float32), 34962)
    ibm = np.tile(np.eye(4, dtype=np.float32), (j, 1, 1))
    ibm[:, 3, :3] = -rest_joints  # column-major storage: the translation is the 4th column
    ibm_acc = buf.array(ibm.reshape(j, 16))
    # animation
    times = buf.array((np.arange(num_frames) / fps).astype(np.float32), minmax=True)
    channels, samplers = [], []
    for i in range(j):
        def quats(i=i):
            prev = None
            for R in local_rotations(i):
                q = quaternions_xyzw(R, prev)
                prev = q[-1]
                yield q
        samplers.append({"input": times, "output": buf.stream(num_frames, 4, quats), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": i, "path": "rotation"}})
    samplers.append({"input": times, "output": buf.stream(num_frames, 3, root_translation), "interpolation": "LINEAR"})
    channels.append({"sampler": len(samplers) - 1, "target": {"node": 0, "path": "translation"}})
    # nodes: joints 0..j-1, then the mesh node
    nodes = []
    for i in range(j):
        t = rest_joints[i] - (rest_joints[parents[i]] if parents[i] >= 0 else 0.0)
        node = {"name": names[i], "translation": t.tolist()}
        kids = [c for c in range(j) if parents[c] == i]
        if kids:
            node["children"] = kids
        nodes.append(node)
    nodes.append({"name": "body", "mesh": 0, "skin": 0})
    doc = {
        "asset": {"version": "2.0", "generator": "moro infer"},
        "scene": 0,
        "scenes": [{"nodes": [0, j]}],
        "nodes": nodes,
        "meshes": [{"name": "body", "primitives": [{"attributes": attrs, "indices": idx, "mode": 4}]}],
        "skins": [{"joints": list(range(j)), "skeleton": 0, "inverseBindMatrices": ibm_acc}],
        "animations": [{"name": "motion", "channels": channels, "samplers": samplers}],
        "buffers": [{"byteLength": buf.size + (-buf.size) % 4}],
        "bufferViews": buf.views,
        "accessors": buf.accessors,
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 4)
    bin_len = buf.size + (-buf.size) % 4
    with open(path, "wb") as f:
        f.write(struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + 8 + len(text) + 8 + bin_len))
        f.write(struct.pack("<II", len(text), CHUNK_JSON) + text)
        f.write(struct.pack("<II", bin_len, CHUNK_BIN))
        written = 0
        for nbytes, produce in buf.pieces:
            n = 0
            for block in produce():
                f.write(block)
                n += len(block)
            if n != nbytes:
                raise RuntimeError(f"GLB piece produced {n} bytes, expected {nbytes} (a frame source ended early)")
            written += n
        f.write(b"\0" * (bin_len - written))


def read_glb(path: str | os.PathLike) -> tuple[dict, bytes]:
    """Parse a GLB file: ``(json document, BIN chunk bytes)``; ValueError if it is not valid GLB 2."""
    data = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2 or length != len(data):
        raise ValueError(f"{path}: not a GLB 2.0 file (magic {magic:#x}, version {version}, length {length}/{len(data)})")
    jlen, jtype = struct.unpack_from("<II", data, 12)
    if jtype != CHUNK_JSON:
        raise ValueError(f"{path}: first chunk is not JSON")
    doc = json.loads(data[20 : 20 + jlen])
    off = 20 + jlen
    blen, btype = struct.unpack_from("<II", data, off)
    if btype != CHUNK_BIN:
        raise ValueError(f"{path}: second chunk is not BIN")
    return doc, data[off + 8 : off + 8 + blen]


def read_accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    """Accessor ``index`` as an array (count, components) (or (count,) for scalars)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(NUMPY[acc["componentType"]])
    comps = COUNT[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    a = np.frombuffer(binary, dtype=dtype, count=acc["count"] * comps, offset=start)
    return a if comps == 1 else a.reshape(acc["count"], comps)
