"""Image datasets of the pose prior (stage 3): BEDLAM's real-image labels and 4D-Humans shards.

- BEDLAM ``real_training_labels`` npz, one per dataset (coco, mpii, h36m_train,
  mpi_inf_3dhp_train), arrays of length N: ``imgname``, ``center`` (2), ``scale`` (box / 200),
  ``pose`` (72 SMPL axis-angle), ``shape`` (10), ``part`` (24, 3) 2D keypoints, optional
  ``openpose`` (25, 3), ``global_t`` (3) and ``focal_l`` (CLIFF pseudo-GT camera), ``S`` (H36M
  3D), ``gender`` (:func:`read_image_labels`). The SMPL bodies are converted to SMPL-X once
  (:class:`SmplToSmplx`, smplfitter on the SMPL mesh mapped onto SMPL-X's topology with the
  ``smpl2smplx`` deformation-transfer matrix); ``moro prepare images`` stores the result, so the
  conversion is done (and cached) once. Missing focal length: the image diagonal in pixels.
- 4D-Humans webdataset shards ``%06d.tar``: per sample ``<key>.jpg`` + ``<key>.data.pyd`` (a
  pickled list of per-person dicts: keypoints_2d (44, 3), keypoints_3d (44, 4), center, scale,
  body_pose (72), betas (10), has_body_pose, has_betas) (:func:`iter_webdataset`, read with the
  data-only unpickler, no code runs). ``moro prepare images`` converts each shard into one
  prepared sequence, one row per person with a body pose (:func:`shard_people`): the SMPL body
  converted to SMPL-X, the image size read from the JPEG, the shard's keypoints and box.
  **Missing in the shards**: the camera translation and focal length. The focal length is taken
  as the image diagonal (as for label files without ``focal_l``), and the translation is
  *estimated* by weak perspective (:func:`weak_perspective_transl`: depth from the box size, x/y
  from the box centre); rows carry ``trans_estimated = 1`` so training can ignore the depth.
  ``image_files`` are ``<shard>.tar/<key>.jpg`` (read from inside the tar by
  :func:`moro.data.prepared.read_image`).

Samples are in the camera frame (``T_w2c`` = identity; the world is the camera).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.body.model import BodyModel
from moro.body.params import smpl_params_to_pose
from moro.geometry.rotations import rotmat_to_rotvec

from .formats import DatasetFormatError, as_str, load_npz

__all__ = ["IMAGE_LABEL_KEYS", "read_image_labels", "focal_or_diagonal", "SmplToSmplx", "iter_webdataset", "WebSample",
           "shard_people", "weak_perspective_transl", "BOX_FACTOR"]

BOX_FACTOR = 1.2  # the shards' boxes enclose the keypoints with this margin (as box_gt)

IMAGE_LABEL_KEYS = ("imgname", "center", "scale", "pose", "shape")


def read_image_labels(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One BEDLAM real-image label file, checked: every array has N rows, ``pose`` (N, 72), ``shape`` (N, 10).

    ``gender`` (bytes or str) is decoded to str; absent -> "neutral".
    """
    path = Path(path)
    d = load_npz(path, IMAGE_LABEL_KEYS, "BEDLAM real-image label file")
    n = len(d["imgname"])
    for k, w in (("pose", 72), ("shape", 10)):
        if d[k].shape != (n, w):
            raise DatasetFormatError(f"{path}: key {k!r} must be ({n}, {w}), got {d[k].shape}")
    for k, v in d.items():
        if v.ndim and len(v) != n:
            raise DatasetFormatError(f"{path}: key {k!r} has {len(v)} rows but 'imgname' has {n}")
    d["imgname"] = np.array([as_str(x) for x in d["imgname"]])
    d["gender"] = np.array([as_str(g).lower() for g in d["gender"]]) if "gender" in d else np.array(["neutral"] * n)
    return d


def focal_or_diagonal(focal: float | None, width: int, height: int) -> float:
    """The CLIFF focal length in pixels, or the image diagonal when missing / not positive."""
    return float(focal) if focal is not None and np.isfinite(focal) and focal > 0 else float(np.hypot(width, height))


class SmplToSmplx:
    """SMPL parameters -> SMPL-X parameters by fitting SMPL-X to the transferred SMPL mesh.

    Args:
        smpl: the SMPL :class:`BodyModel` (24 joints).
        smplx: the SMPL-X :class:`BodyModel` (55 joints).
        transfer: (v_smplx, v_smpl) linear vertex transfer (``smpl2smplx_deftrafo_setup.pkl``,
            read with ``moro.metrics.predictions.load_vertex_transfer``).
        num_iter: smplfitter iterations (3 is accurate).
    """

    def __init__(self, smpl: BodyModel, smplx: BodyModel, transfer: torch.Tensor, num_iter: int = 3):
        from smplfitter.pt import BodyFitter

        from moro.body.fitting import to_smplfitter

        if tuple(transfer.shape) != (smplx.num_vertices, smpl.num_vertices):
            raise ValueError(f"the SMPL -> SMPL-X transfer must be ({smplx.num_vertices}, {smpl.num_vertices}), got "
                             f"{tuple(transfer.shape)}; pass smpl2smplx_deftrafo_setup.pkl (--smpl2smplx)")
        self.smpl, self.smplx, self.num_iter = smpl, smplx, num_iter
        self.transfer = transfer.to(smplx.v_template.dtype)
        self.fitter = BodyFitter(to_smplfitter(smplx))

    def __call__(self, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Convert n bodies.

        Args:
            pose: (n, 72) SMPL axis-angle (global orientation first), radians.
            betas: (n, 10) SMPL shape.
            transl: (n, 3) SMPL translation, metres (default zero).
        Returns:
            ``{"pose": (n, 165) SMPL-X axis-angle, "betas": (n, s), "transl": (n, 3), "joints22": (n, 22, 3) of the
            SMPL body (for checking), "fit_error": (n,) mean vertex distance, metres}``.
        """
        n = pose.shape[0]
        transl = np.zeros((n, 3)) if transl is None else transl
        p = smpl_params_to_pose(self.smpl, global_orient=pose[:, :3], body_pose=pose[:, 3:72], betas=betas, transl=transl,
                                sequence="smpl->smplx")
        dt = self.smplx.v_template.dtype
        with torch.no_grad():
            v = self.smpl(p.body_pose.to(dt), p.betas.to(dt), p.root_rot.to(dt), p.root_trans.to(dt)).vertices
            target = torch.einsum("xs,nsc->nxc", self.transfer, v)
            res = self.fitter.fit(target.float(), num_iter=self.num_iter, beta_regularizer=1.0, share_beta=False,
                                  final_adjust_rots=True, requested_keys=["relative_orientations", "shape_betas", "trans"])
        rel = res["relative_orientations"].double()  # (n, 55, 3, 3)
        betas_x = res["shape_betas"].double()
        transl_x = res["trans"].double()  # smplfitter's trans is SMPL's transl
        with torch.no_grad():
            root = self.smplx.smpl_transl_to_root_trans(transl_x.to(dt), betas_x.to(dt))
            fitted = self.smplx(rel[:, 1:].to(dt), betas_x.to(dt), rel[:, 0].to(dt), root).vertices
        err = (fitted.double() - target.double()).norm(dim=-1).mean(-1)
        return {"pose": rotmat_to_rotvec(rel).reshape(n, -1).numpy(), "betas": betas_x.numpy(), "transl": transl_x.numpy(),
                "joints22": self.smpl.joints22(v).double().numpy(), "fit_error": err.numpy()}


@dataclass
class WebSample:
    """One image of a 4D-Humans shard with its people."""

    key: str
    image: bytes  # the JPEG bytes
    people: list[dict]  # per person: keypoints_2d (44, 3), keypoints_3d (44, 4), center (2), scale, body_pose (72), betas (10), ...
    image_ext: str = "jpg"  # the image member is "<key>.<image_ext>"


def iter_webdataset(path: str | os.PathLike) -> Iterator[WebSample]:
    """Samples of a 4D-Humans ``%06d.tar`` shard in file order (``<key>.jpg`` + ``<key>.data.pyd``).

    Raises:
        DatasetFormatError: unreadable tar, a ``.data.pyd`` that is not a list of dicts, or a key
            with only one of the two files (naming the shard and the key).
    """
    from .joblib_pickle import _Unpickler  # data-only: dicts, lists, numbers, numpy arrays

    path = Path(path)
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as e:
        raise DatasetFormatError(f"{path}: not a readable tar shard ({e}); re-download it") from e
    parts: dict[str, dict[str, bytes]] = {}
    order: list[str] = []
    with tar:
        for m in tar:
            if not m.isfile():
                continue
            name = Path(m.name).name
            key, _, ext = name.partition(".")
            key = str(Path(m.name).parent / key) if Path(m.name).parent != Path(".") else key
            if key not in parts:
                parts[key] = {}
                order.append(key)
            parts[key][ext] = tar.extractfile(m).read()
    for key in order:
        p = parts[key]
        ext = next((e for e in ("jpg", "jpeg", "png") if e in p), None)
        img = p.get(ext) if ext else None
        if img is None or "data.pyd" not in p:
            raise DatasetFormatError(f"{path}: sample {key!r} has files {sorted(p)}; expected <key>.jpg and <key>.data.pyd")
        try:
            people = _Unpickler(io.BytesIO(p["data.pyd"])).load()
        except Exception as e:  # unpickling raises many types
            raise DatasetFormatError(f"{path}: {key}.data.pyd is not a readable data pickle ({type(e).__name__}: {e})") from e
        if isinstance(people, dict):
            people = [people]
        if not isinstance(people, list) or not all(isinstance(x, dict) for x in people):
            raise DatasetFormatError(f"{path}: {key}.data.pyd must hold a list of per-person dicts, got {type(people).__name__}")
        yield WebSample(key=key, image=img, people=people, image_ext=ext)


def _first(x, default: float) -> float:
    a = np.asarray(x if x is not None else default, dtype=np.float64).reshape(-1)
    return float(a[0]) if a.size else default


def shard_people(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Every person of a 4D-Humans shard that has a body pose, as arrays of length n.

    Returns ``pose`` (n, 72) SMPL axis-angle (global orientation in the camera first), ``betas``
    (n, 10) (zero where ``has_betas`` is 0), ``has_betas`` (n,), ``center`` (n, 2) and ``scale`` (n,)
    (box side / 200, the larger side when two are stored), ``keypoints_2d`` (n, 44, 3),
    ``keypoints_3d`` (n, 44, 4), ``image_size`` (n, 2) from the image header, ``key`` (n,) sample key,
    ``person`` (n,) index in the sample, ``image_files`` (n,) ``<shard relative to root>/<key>.<ext>``,
    and ``samples`` / ``people`` / ``no_pose`` counts.
    """
    from PIL import Image

    path = Path(path)
    rel = path.relative_to(root).as_posix() if root is not None else path.name
    rows: dict[str, list] = {k: [] for k in ("pose", "betas", "has_betas", "center", "scale", "keypoints_2d", "keypoints_3d",
                                             "image_size", "key", "person", "image_files")}
    samples = people = no_pose = 0
    for smp in iter_webdataset(path):
        samples += 1
        size = None
        for k, p in enumerate(smp.people):
            people += 1
            if _first(p.get("has_body_pose"), 1.0) <= 0 or "body_pose" not in p:
                no_pose += 1
                continue
            pose = np.asarray(p["body_pose"], np.float64).reshape(-1)
            if pose.shape != (72,):
                raise DatasetFormatError(f"{path}: {smp.key}.data.pyd person {k}: 'body_pose' must hold 72 SMPL values, got {pose.shape}")
            if size is None:
                try:
                    with Image.open(io.BytesIO(smp.image)) as im:
                        size = im.size
                except Exception as e:  # PIL raises several types
                    raise DatasetFormatError(f"{path}: {smp.key}.{smp.image_ext} is not a readable image ({e})") from e
            hb = _first(p.get("has_betas"), 1.0) > 0 and "betas" in p
            rows["pose"].append(pose)
            rows["betas"].append(np.asarray(p["betas"], np.float64).reshape(-1)[:10] if hb else np.zeros(10))
            rows["has_betas"].append(float(hb))
            rows["center"].append(np.asarray(p.get("center", (size[0] / 2, size[1] / 2)), np.float64).reshape(2))
            rows["scale"].append(float(np.max(np.asarray(p.get("scale", max(size) / 200.0), np.float64))))
            rows["keypoints_2d"].append(np.asarray(p.get("keypoints_2d", np.zeros((44, 3))), np.float32).reshape(-1, 3))
            rows["keypoints_3d"].append(np.asarray(p.get("keypoints_3d", np.zeros((44, 4))), np.float32).reshape(-1, 4))
            rows["image_size"].append(size)
            rows["key"].append(smp.key)
            rows["person"].append(k)
            rows["image_files"].append(f"{rel}/{smp.key}.{smp.image_ext}")
    out = {k: np.asarray(v) for k, v in rows.items()}
    out.update(samples=samples, people=people, no_pose=no_pose)
    return out


def weak_perspective_transl(joints: np.ndarray, center: np.ndarray, scale: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(n, 3) translations placing bodies posed at zero translation (``joints`` (n, j, 3), camera
    orientation) so that their joints' box matches the HMR box ``center`` (n, 2), ``scale`` (n,):
    depth ``z = f * extent * BOX_FACTOR / (200 scale)`` (extent = the larger x / y span of the
    joints), x / y so that the joints' box centre projects to ``center``. An estimate for data without
    a camera translation (4D-Humans shards), not a measurement."""
    f = K[:, 0, 0]
    lo, hi = joints.min(1), joints.max(1)
    extent = np.maximum(hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1])
    z = f * extent * BOX_FACTOR / np.maximum(200.0 * scale, 1e-6)
    mid = (lo + hi) / 2
    xy = (center - K[:, :2, 2]) * (z / f)[:, None] - mid[:, :2]
    return np.concatenate([xy, (z - mid[:, 2])[:, None]], axis=1)
