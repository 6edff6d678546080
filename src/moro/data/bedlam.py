"""BEDLAM (synthetic video, 30 fps) -> :class:`~moro.data.schema.Clip`, from the processed labels.

Processed labels (``shared/data-formats.md``), one npz per scene, ``<labels>/<scene>.npz``, arrays
of length N (one row per person and frame): ``imgname`` (``seq_XXXXXX/seq_XXXXXX_XXXX.png``, relative
to ``<images>/<scene>/png/``), ``center`` (2), ``scale`` (box / 200), ``pose_cam`` (165: global
orientation in the camera 0:3, body 3:66, jaw, eyes, hands), ``pose_world``, ``shape`` (10 or 11),
``trans_cam``, ``trans_world``, ``gtkps``, ``cam_int`` (3, 3), ``cam_ext`` (4, 4 world -> camera),
``gender``, ``proj_verts``. Rows are grouped into sequences by image folder and body shape
(one person = one shape), sorted by frame number: ``<scene>/seq_XXXXXX/p<k>``.

- Camera-frame body = SMPL-X(pose_cam, shape, trans_cam) + ``cam_ext[:3, 3]`` (per frame).
- World: BEDLAM's label world (the frame ``cam_ext`` maps from) has OpenCV-style axes, y *down*:
  the authors' ``df_full_body.py`` (github.com/pixelite1201/BEDLAM, ``data_processing/``) maps
  the Y-up SMPL-X body into it with ``diag(1, -1, -1)`` and Unreal's Z up to ``-y``
  (:mod:`.bedlam_raw`). moro's world is that frame turned upright, ``x_moro = diag(1, -1, -1) x_label``,
  so ``T_w2c = cam_ext[0] @ diag(1, -1, -1, 1)`` (its origin is the body's placement: the ground is
  at ``y = 0`` when the motion's floor is). For a moving camera the world then follows frame 0's
  camera (``moving_camera`` is reported so ``moro prepare`` can count such sequences).
- Closeup scenes (``closeup`` in the scene name) are stored rotated: frames are turned 90 degrees
  clockwise on reading (``image_rot90 = 1``); the labels (``cam_int``, ``gtkps``) describe the
  upright image, which is 720 x 1280 (else 1280 x 720).
- Visibility filters: a frame is kept when >= :data:`FRAME_MIN_JOINTS` of the 22 joints project
  inside the image; a 60-frame clip when >= 80 % of its frames have >= :data:`CLIP_MIN_JOINTS`
  (:func:`frame_keep`, :func:`clip_ok`).
- Body: always the neutral SMPL-X. ``df_full_body.py`` poses every body with the motion file's
  model (``neutral_ground_truth_motioninfo``, neutral, flat hand mean, 11 betas) and writes the
  subject's gender (``gender_sub``) into the ``gender`` column, so that column is kept as
  ``subject_gender`` only. ``shape`` may hold 11 betas: all are used when the model has >= 11,
  else the eleventh must be zero (nonzero is an error naming the model setting).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moro.body.params import smpl_params_to_pose

from .formats import BodyModelSource, DatasetFormatError, as_str, load_npz, pose_frames, rigid_inverse

Y_DOWN_TO_UP = np.diag([1.0, -1.0, -1.0, 1.0])
"""(4, 4) BEDLAM label world (y down) <-> moro world (Y up); its own inverse."""
from .schema import Clip

__all__ = ["Y_DOWN_TO_UP", "LABEL_KEYS", "FRAME_MIN_JOINTS", "CLIP_MIN_JOINTS", "CLIP_MIN_FRACTION", "BedlamSequence", "read_bedlam_labels",
           "bedlam_clip", "frame_keep", "clip_ok", "is_closeup", "image_size_of"]

LABEL_KEYS = ("imgname", "pose_cam", "shape", "trans_cam", "cam_int", "cam_ext")
FRAME_MIN_JOINTS = 8
CLIP_MIN_JOINTS = 16
CLIP_MIN_FRACTION = 0.8
FPS = 30.0
_FRAME_RE = re.compile(r"(seq_\d+)_(\d+)\.\w+$")


def is_closeup(scene: str) -> bool:
    """Closeup scenes are stored rotated by 90 degrees."""
    return "closeup" in scene


def image_size_of(scene: str) -> tuple[int, int]:
    """(width, height) of a scene's upright frames: 720 x 1280 for closeups, else 1280 x 720."""
    return (720, 1280) if is_closeup(scene) else (1280, 720)


@dataclass
class BedlamSequence:
    """One person in one BEDLAM sequence (rows of a processed label file, sorted by frame)."""

    name: str  # "<scene>/seq_XXXXXX/p<k>"
    scene: str
    frame_ids: np.ndarray  # (t,) int64 frame numbers from the image names
    image_files: np.ndarray  # (t,) str "<scene>/png/seq_XXXXXX/seq_XXXXXX_XXXX.png"
    gender: str
    pose_cam: np.ndarray  # (t, 165) axis-angle radians, camera frame
    shape: np.ndarray  # (s,) betas
    trans_cam: np.ndarray  # (t, 3) SMPL transl in the camera frame, before the cam_ext offset
    cam_int: np.ndarray  # (t, 3, 3)
    cam_ext: np.ndarray  # (t, 4, 4) BEDLAM label world (y down) -> camera
    subject_gender: str = ""  # the subject's gender (processed 'gender' column / motion file 'gender_sub'); not the model
    person: str = ""  # raw layout: the be_seq.csv body "<subject>_<motion id>"

    @property
    def moving_camera(self) -> bool:
        """True when the extrinsics change by more than 1 mm / 1e-4 over the sequence."""
        return bool(np.abs(self.cam_ext - self.cam_ext[:1]).max() > 1e-3)


def read_bedlam_labels(path: str | os.PathLike) -> list[BedlamSequence]:
    """Split one processed scene file ``<scene>.npz`` into per-person sequences.

    Raises:
        DatasetFormatError: missing key, arrays of different lengths, an unparsable ``imgname``
            (each naming the file and the key).
    """
    path = Path(path)
    d = load_npz(path, LABEL_KEYS, "BEDLAM processed label file")
    scene = path.stem
    n = len(d["imgname"])
    for k in LABEL_KEYS + tuple(k for k in ("gender",) if k in d):
        if len(d[k]) != n:
            raise DatasetFormatError(f"{path}: key {k!r} has {len(d[k])} rows but 'imgname' has {n}; the file is damaged")
    if d["pose_cam"].ndim != 2 or d["pose_cam"].shape[1] != 165:
        raise DatasetFormatError(f"{path}: key 'pose_cam' must be (N, 165) SMPL-X axis-angle, got {d['pose_cam'].shape}")
    names = [as_str(x) for x in d["imgname"]]
    parsed = [_FRAME_RE.search(x) for x in names]
    bad = [x for x, m in zip(names, parsed) if m is None]
    if bad:
        raise DatasetFormatError(f"{path}: key 'imgname' entry {bad[0]!r} is not '.../seq_XXXXXX_XXXX.png'")
    seqs = np.array([m.group(1) for m in parsed])
    frames = np.array([int(m.group(2)) for m in parsed], dtype=np.int64)
    shape = np.asarray(d["shape"], np.float64).reshape(n, -1)
    genders = [as_str(g).lower() for g in d["gender"]] if "gender" in d else [""] * n  # the subject's, not the model's
    out = []
    for seq in sorted(set(seqs)):
        rows = np.nonzero(seqs == seq)[0]
        _, person = np.unique(np.round(shape[rows], 4), axis=0, return_inverse=True)
        for k in range(int(person.max()) + 1):
            r = rows[person.reshape(-1) == k]
            r = r[np.argsort(frames[r], kind="stable")]
            out.append(BedlamSequence(
                name=f"{scene}/{seq}/p{k}", scene=scene, frame_ids=frames[r],
                image_files=np.array([f"{scene}/png/{seq}/{Path(names[i]).name}" for i in r]), gender="neutral",
                subject_gender=genders[r[0]],
                pose_cam=np.asarray(d["pose_cam"][r], np.float64), shape=shape[r[0]],
                trans_cam=np.asarray(d["trans_cam"][r], np.float64).reshape(-1, 3),
                cam_int=np.asarray(d["cam_int"][r], np.float64).reshape(-1, 3, 3),
                cam_ext=np.asarray(d["cam_ext"][r], np.float64).reshape(-1, 4, 4)))
    return out


def bedlam_clip(s: BedlamSequence, models: BodyModelSource, start: int = 0, length: int | None = None) -> Clip:
    """Frames ``start .. start + length - 1`` (default all) of a sequence as a :class:`Clip`.

    The intrinsics of the first frame are used for the whole clip (BEDLAM's are constant per sequence).
    """
    length = len(s.frame_ids) - start if length is None else length
    sl = slice(start, start + length)
    body = models("smplx", s.gender)
    shape = s.shape
    if shape.shape[0] > body.num_betas:
        if np.abs(shape[body.num_betas:]).max() > 1e-6:
            raise DatasetFormatError(f"{s.name}: 'shape' holds {shape.shape[0]} betas, the eleventh nonzero (BEDLAM's kid "
                                     f"factor / 11th component), but the body model has {body.num_betas}; prepare with "
                                     f"--num-betas 11 or skip this sequence")
        shape = shape[:body.num_betas]
    p = s.pose_cam[sl]
    transl = s.trans_cam[sl] + s.cam_ext[sl, :3, 3]  # body in camera = SMPL-X(pose_cam, shape, trans_cam) + cam_ext t
    pose = smpl_params_to_pose(body, global_orient=p[:, :3], body_pose=p[:, 3:66], jaw_pose=p[:, 66:69],
                               leye_pose=p[:, 69:72], reye_pose=p[:, 72:75], left_hand_pose=p[:, 75:120],
                               right_hand_pose=p[:, 120:165], betas=shape, transl=transl, sequence=s.name)
    T_w2c = s.cam_ext[start] @ Y_DOWN_TO_UP  # moro world (Y up) -> label world (y down) -> camera
    size = image_size_of(s.scene)
    K = s.cam_int[start]
    fields = pose_frames(body, pose, T_p2w=rigid_inverse(T_w2c), T_w2c=T_w2c, K=K, image_size=size, fps=FPS)
    return Clip(dataset="bedlam", sequence=s.name, fps=FPS, image_size=size, K=K, T_w2c=T_w2c, frame_ids=s.frame_ids[sl],
                image_files=s.image_files[sl], **fields).validate()


def frame_keep(in_image: np.ndarray, min_joints: int = FRAME_MIN_JOINTS) -> np.ndarray:
    """(t,) bool: frames with at least ``min_joints`` of the 22 joints inside the image ((t, 22) ``in_image``)."""
    return in_image.sum(-1) >= min_joints


def clip_ok(in_image: np.ndarray, min_joints: int = CLIP_MIN_JOINTS, min_fraction: float = CLIP_MIN_FRACTION) -> bool:
    """A clip ((t, 22) ``in_image``) is kept when >= ``min_fraction`` of its frames have >= ``min_joints`` inside."""
    return bool((in_image.sum(-1) >= min_joints).mean() >= min_fraction)
