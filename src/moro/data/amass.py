"""AMASS motion capture (both releases) -> :class:`~moro.data.schema.Clip` in moro's world.

On-disk layout (``shared/data-formats.md``; ``<root>`` = the folder holding the subsets)::

    <root>/<Subset>/<Subject>/<seq>_stageii.npz   SMPL-X N release (gender 'neutral')
    <root>/<Subset>/<Subject>/<seq>_poses.npz     SMPL+H G release (gendered)

``*_stageii.npz``: gender, surface_model_type, ``mocap_frame_rate`` (float), mocap_time_length,
``trans`` (T, 3), ``poses`` (T, 165) = root 0:3 | body 3:66 | jaw 66:69 | eyes 69:75 | hands
75:165, ``betas`` (16,), num_betas, markers_latent, latent_labels, markers_latent_vids, optional
v_template, dmpls, expression. ``*_poses.npz``: ``poses`` (T, 156) = root | body 3:66 | hands
66:156, ``betas`` (16,), dmpls (T, 8), ``trans`` (T, 3), gender, ``mocap_framerate`` (sic).
``*_stagei.npz`` (shape only) and ``shape.npz`` files are not sequences and are ignored.
Gender may be stored as ``b'male'`` or a 0-d array (:func:`moro.data.formats.as_str`).

Protocol (MoRo / RoHM):

- 30 fps by an integer stride ``fps / 30`` (60, 120, 150, ... fps); a rate that is not a
  multiple of 30 raises :class:`FrameRateError` (``moro prepare`` skips and counts it).
- Excluded: HDM05 ``HDM_dg_07-01*``, BMLrub ``*_treadmill*`` and ``*_normal*`` (:func:`is_excluded`).
- Motion-prior splits (:func:`amass_split`): train = :data:`TRAIN_SUBSETS`, test =
  :data:`TEST_SUBSETS`; other subsets belong to no split. Subset folder names of both releases
  are accepted (e.g. ``MPI_HDM05`` = HDM05, ``TCD_handMocap`` = TCDHands, ``DFaust_67`` = DFaust).
- Clips: non-overlapping 60-frame windows (:func:`clip_starts`).
- World: AMASS is Z up; parameters are rotated by :data:`~moro.data.formats.Z_UP_TO_Y_UP` and
  the floor (lowest joint of the sequence) moved to ``y = 0``. Test clips are canonicalised
  (:func:`moro.data.formats.facing_transform`: frame 0's pelvis at the horizontal origin, facing
  +Z, floor at the clip's lowest joint).
- Camera: AMASS has none; a static virtual camera 5 m in front of the clip's first pose
  (:func:`moro.data.formats.virtual_camera`) fills the schema's camera fields.

Bodies: the N release is posed with ``models("smplx", "neutral")``; the G release with
``models("smpl", gender)`` (SMPL+H shares SMPL's body; its hand poses are dropped) unless
``g_model="smplx"``, which puts the body and hand rotations on SMPL-X's joints (shape not converted).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moro.body.params import smpl_params_to_pose

from .formats import (Z_UP_TO_Y_UP, BodyModelSource, DatasetFormatError, as_str, facing_transform, load_npz, pose_frames,
                      rigid, transform_world, virtual_camera)
from .schema import Clip

__all__ = [
    "TRAIN_SUBSETS", "TEST_SUBSETS", "CLIP_FRAMES", "TARGET_FPS", "FrameRateError", "AmassMotion", "find_amass_files",
    "canonical_subset", "amass_split", "is_excluded", "read_amass", "clip_starts", "amass_clip",
]

TARGET_FPS = 30
CLIP_FRAMES = 60
TRAIN_SUBSETS = ("HumanEva", "HDM05", "MoSh", "Transitions", "ACCAD", "BMLhandball", "BMLmovi", "BMLrub", "CMU", "DFaust",
                 "Eyes_Japan_Dataset", "PosePrior", "SSM", "GRAB", "SOMA")
TEST_SUBSETS = ("TCDHands", "TotalCapture", "SFU")
_ALIASES = {"MPI_HDM05": "HDM05", "MPI_mosh": "MoSh", "Transitions_mocap": "Transitions", "DFaust_67": "DFaust",
            "MPI_Limits": "PosePrior", "SSM_synced": "SSM", "TCD_handMocap": "TCDHands", "BioMotionLab_NTroje": "BMLrub",
            "KIT": "KIT", "EKUT": "EKUT"}
_EXCLUDE = {"HDM05": ("HDM_dg_07-01*",), "BMLrub": ("*_treadmill*", "*_normal*")}
_N_KEYS = ("poses", "trans", "betas", "gender", "mocap_frame_rate")
_G_KEYS = ("poses", "trans", "betas", "gender", "mocap_framerate")


class FrameRateError(DatasetFormatError):
    """A sequence's frame rate is not an integer multiple of 30 fps (dropped by the protocol)."""


def canonical_subset(folder: str) -> str:
    """Subset folder name of either release -> the protocol's name (``MPI_HDM05`` -> ``HDM05``)."""
    return _ALIASES.get(folder, folder)


def amass_split(subset: str) -> str | None:
    """``"train"``, ``"test"`` or None (not in the motion-prior splits) for a subset folder name."""
    s = canonical_subset(subset)
    return "train" if s in TRAIN_SUBSETS else "test" if s in TEST_SUBSETS else None


def is_excluded(subset: str, name: str) -> bool:
    """The protocol's exclusion list: HDM05 ``HDM_dg_07-01*``, BMLrub ``*_treadmill*``, ``*_normal*``."""
    return any(fnmatch.fnmatch(Path(name).name, p) for p in _EXCLUDE.get(canonical_subset(subset), ()))


def find_amass_files(root: str | os.PathLike) -> list[Path]:
    """Sequence files under ``root`` (``<Subset>/<Subject>/*_stageii.npz`` or ``*_poses.npz``), sorted.

    Shape-only files (``*_stagei.npz``, ``shape.npz``) are not listed. Raises
    :class:`DatasetFormatError` when ``root`` holds none (naming the expected layout).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"AMASS root {root} not found; pass the folder holding the subset folders (ACCAD, CMU, ...)")
    files = sorted(p for p in root.rglob("*.npz") if p.name.endswith(("_stageii.npz", "_poses.npz")))
    if not files:
        raise DatasetFormatError(f"{root}: no AMASS sequences (<Subset>/<Subject>/<seq>_stageii.npz or _poses.npz) found; "
                                 f"unpack the AMASS SMPL-X N or SMPL+H G archives there")
    return files


@dataclass
class AmassMotion:
    """One AMASS sequence resampled to 30 fps (parameters still Z up, as stored)."""

    name: str  # "<Subset>/<Subject>/<seq>" (file name without the _stageii / _poses suffix)
    subset: str  # protocol subset name (canonical_subset)
    release: str  # "smplx" (N release) or "smplh" (G release)
    gender: str  # "neutral" | "female" | "male"
    source_fps: float  # stored frame rate
    stride: int  # source frames per output frame
    poses: np.ndarray  # (t, 165) or (t, 156) axis-angle radians, 30 fps
    trans: np.ndarray  # (t, 3) SMPL transl, metres, Z up
    betas: np.ndarray  # (16,) shape

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def read_amass(path: str | os.PathLike, root: str | os.PathLike | None = None) -> AmassMotion:
    """Read one ``*_stageii.npz`` / ``*_poses.npz`` and resample it to 30 fps.

    Args:
        path: the sequence file.
        root: the AMASS root (names the sequence relative to it; default: the file's grandparent's parent).
    Raises:
        DatasetFormatError: missing key, wrong shape, unknown gender (naming file and key).
        FrameRateError: the rate is not a multiple of 30 fps.
    """
    path = Path(path)
    release = "smplx" if path.name.endswith("_stageii.npz") else "smplh"
    d = load_npz(path, _N_KEYS if release == "smplx" else _G_KEYS,
                 "AMASS SMPL-X N sequence" if release == "smplx" else "AMASS SMPL+H G sequence")
    root = Path(root) if root is not None else path.parents[2]
    rel = path.relative_to(root).as_posix()
    name = rel[: -len("_stageii.npz")] if release == "smplx" else rel[: -len("_poses.npz")]
    width = 165 if release == "smplx" else 156
    poses, trans = np.asarray(d["poses"], np.float64), np.asarray(d["trans"], np.float64)
    if poses.ndim != 2 or poses.shape[1] != width:
        raise DatasetFormatError(f"{path}: key 'poses' must be (T, {width}) for the {release} release, got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise DatasetFormatError(f"{path}: key 'trans' must be ({poses.shape[0]}, 3) like 'poses', got {trans.shape}")
    fps_key = "mocap_frame_rate" if release == "smplx" else "mocap_framerate"
    fps = float(np.asarray(d[fps_key]).reshape(-1)[0])
    stride = int(round(fps / TARGET_FPS))
    if stride < 1 or abs(fps - stride * TARGET_FPS) > 1e-3:
        raise FrameRateError(f"{path}: {fps_key} = {fps:g} is not an integer multiple of {TARGET_FPS} fps; the MoRo/RoHM "
                             f"protocol drops such sequences")
    gender = as_str(d["gender"]).lower()
    if gender not in ("neutral", "female", "male"):
        raise DatasetFormatError(f"{path}: key 'gender' = {gender!r}; expected 'neutral', 'female' or 'male'")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise DatasetFormatError(f"{path}: 'poses' or 'trans' contain NaN or inf; the sequence is damaged")
    subset = canonical_subset(Path(rel).parts[0])
    return AmassMotion(name=name, subset=subset, release=release, gender=gender, source_fps=fps, stride=stride,
                       poses=poses[::stride], trans=trans[::stride], betas=np.asarray(d["betas"], np.float64).reshape(-1))


def clip_starts(num_frames: int, length: int = CLIP_FRAMES) -> list[int]:
    """Starts of the non-overlapping ``length``-frame clips of a sequence (none when shorter)."""
    return list(range(0, num_frames - length + 1, length))


def _params(m: AmassMotion, kind: str) -> dict:
    p = m.poses
    out = dict(global_orient=p[:, :3], body_pose=p[:, 3:66], betas=m.betas, transl=m.trans)
    if kind == "smplx" and m.release == "smplx":
        out.update(jaw_pose=p[:, 66:69], leye_pose=p[:, 69:72], reye_pose=p[:, 72:75], left_hand_pose=p[:, 75:120],
                   right_hand_pose=p[:, 120:165])
    elif kind == "smplx":
        out.update(left_hand_pose=p[:, 66:111], right_hand_pose=p[:, 111:156])
    return out


def amass_clip(m: AmassMotion, models: BodyModelSource, *, start: int = 0, length: int | None = None,
               canonical: bool = False, g_model: str = "smpl") -> Clip:
    """Frames ``start .. start + length - 1`` (default: all) of a motion as a :class:`Clip`.

    The world is Y up with the floor at the sequence's lowest joint (``canonical``: the test
    canonicalisation of the clip instead); the camera is virtual (module docstring).

    Args:
        m: the motion (:func:`read_amass`).
        models: body-model source; N release -> ``("smplx", "neutral")``, G -> ``(g_model, gender)``.
        canonical: apply the test canonicalisation to this clip.
        g_model: "smpl" or "smplx" for the G release.
    """
    length = m.num_frames - start if length is None else length
    if not (0 <= start and length >= 1 and start + length <= m.num_frames):
        raise IndexError(f"{m.name}: frames {start}..{start + length - 1} outside 0..{m.num_frames - 1}")
    kind = "smplx" if m.release == "smplx" else g_model
    body = models(kind, m.gender if m.release == "smplh" else "neutral")
    sl = slice(start, start + length)
    params = {k: (v[sl] if k != "betas" else v) for k, v in _params(m, kind).items()}
    pose = smpl_params_to_pose(body, sequence=m.name, **params)
    eye = np.eye(4)
    fields = pose_frames(body, pose, T_p2w=rigid(Z_UP_TO_Y_UP), T_w2c=eye, K=np.eye(3), image_size=(1280, 720),
                         fps=TARGET_FPS)
    T_w2n = facing_transform(fields["joints_world"].astype(np.float64)) if canonical else \
        rigid(np.eye(3), [0.0, -float(fields["joints_world"][..., 1].min()), 0.0])
    fields = transform_world(fields, T_w2n)
    T_w2c, K = virtual_camera(fields["joints_world"].astype(np.float64))
    fields = pose_frames(body, pose, T_p2w=T_w2n @ rigid(Z_UP_TO_Y_UP), T_w2c=T_w2c, K=K, image_size=(1280, 720),
                         fps=TARGET_FPS)
    return Clip(dataset="amass", sequence=m.name, fps=float(TARGET_FPS), image_size=(1280, 720), K=K, T_w2c=T_w2c,
                frame_ids=np.arange(start, start + length, dtype=np.int64), **fields).validate()
