"""SMPL-X and SMPL from the user's own model files (licence-gated: moro never ships them).

Finding the file (:func:`find_body_model_file`), first hit wins: (1) the ``path=`` argument, a
model file or a directory; when given it is the *only* place searched (a wrong explicit path is
an error, never silently replaced); (2) the directory ``$MORO_BODY_MODELS``; (3) ``./body_models``;
(4) ``moro.paths.data_dir("body_models")`` (``$MORO_DATA_DIR/body_models``, by default
``~/.local/share/moro/body_models``).

Usual names per directory (``G`` = NEUTRAL | FEMALE | MALE, ``g`` = neutral | f | m), each also
looked for in a ``smplx/`` or ``smpl/`` subdirectory: SMPL-X ``SMPLX_G.npz``, ``SMPLX_G.pkl``;
SMPL ``SMPL_G.pkl``, ``basicmodel_g_lbs_10_207_0_v1.1.0.pkl``, the v1.0.0 names
(``basicModel_f_...``, ``basicmodel_m_...``), ``SMPL_G.npz``.

Reading (:func:`read_smplx_file`, :func:`read_smpl_file`): ``.npz`` (no pickled objects) or
``.pkl`` (official SMPL pickles hold chumpy objects and scipy sparse matrices; they are read
with smplfitter's chumpy stubs, chumpy itself is not needed; pickles run code: load only files
you trust). Every required key is checked for presence, dtype kind and exact shape, and a
:class:`BodyModelFileError` names the file, the key, what was expected and what was found.

Conversion into :class:`BodyModelData` (exact, float64, then cached as float32):

* Pose: full rotations for every joint, SMPL's parent-relative convention. No hand PCA: the
  identity gives *flat* hands; SMPL-X's ``hands_mean{l,r}`` is **not** added (the smplx
  package's ``flat_hand_mean=True``; parameters made with its default ``flat_hand_mean=False``
  need ``hands_mean`` added to their hand axis-angles first). Jaw and eyes are ordinary joints.
* Shape: the first ``num_betas`` shape bases. SMPL-X v1.1 files carry 400 bases (300 shape +
  100 expression), v1.0 files 20 (10 + 10); expression bases are dropped (neutral face).
* Pose correctives: the file's ``posedirs`` (v, 3, (j-1)*9) unchanged. They act on the
  row-major flattening of ``R - I`` of joints 1.., exactly as the smplx package's
  ``reshape(posedirs, (-1, p)).T`` and moro's ``(body_pose - eye).flatten(-3)``.
* Skeleton joints: ``j_template = J_regressor @ v_template``, ``j_shapedirs`` likewise (joints
  never depend on pose correctives, as in SMPL).
* 22 scoring joints: ``J_regressor[:22]`` applied to the *posed* vertices (post-LBS
  regression, metrics.md). COCO-17: the 12 body keypoints are ``J_regressor`` rows
  (``joint_sets.COCO17_BODY_FROM_JOINTS22``), the 5 face keypoints one vertex each
  (``joint_sets.SMPL_COCO_FACE_VERTICES`` / ``SMPLX_COCO_FACE_VERTICES``).
* Foot vertices: SMPL uses GVHMR's ``joint_sets.SMPL_FOOT_VERTICES``. SMPL-X has no published
  set: :func:`moro.body.regressors.pick_foot_vertices` picks, among the vertices skinned mostly
  to the left (7, 10) / right (8, 11) ankle and foot joints and within 2 cm of the sole, the
  rearmost (heel) and foremost (toe) one.
* ``body_only=True`` (SMPL-X only; the paper's tokenizer mesh): vertices 0..9382 (the two
  eyeballs, 9383..10474, are removed), faces whose three indices are all < 9383, and the rows of
  ``v_template``, ``shapedirs``, ``posedirs``, ``weights`` of those vertices. All 55 joints are
  kept and ``j_template`` / ``j_shapedirs`` come from the full mesh (computed before the cut), so
  the body-only mesh equals the full mesh's first 9383 vertices for every pose and shape. Weight
  rows are untouched (they already sum to 1). Regressor weight on removed vertices (the COCO eye
  keypoints sit on the eyeballs; ``J_regressor[:22]`` is expected to have none) moves to the
  closest point of the remaining surface (:func:`moro.body.regressors.transfer_regressor`),
  which keeps each row's sum.

The converted model is cached at ``<cache>/body/<kind>-<gender>[-body]-b<num_betas>-<key>.safetensors``
(:func:`moro.paths.cache_dir`), ``key`` = sha256 of the source file's bytes and the options.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from moro.body.joint_sets import (COCO17, COCO17_BODY_FROM_JOINTS22, JOINTS22, SMPL_COCO_FACE_VERTICES,
                                  SMPL_FOOT_VERTICES, SMPLX_COCO_FACE_VERTICES)
from moro.body.model import BodyModel
from moro.body.model_data import BodyModelData, BodyModelFileError
from moro.body.regressors import pick_foot_vertices, transfer_regressor
from moro.paths import cache_dir, data_dir

log = logging.getLogger(__name__)

BODY_MODELS_ENV = "MORO_BODY_MODELS"
BUILD_VERSION = 2  # bump when the conversion changes: old cache files are then not reused
GENDERS = ("neutral", "female", "male")
SMPLX_BODY_VERTICES = 9383  # SMPL-X vertices 0..9382: the body without the two eyeballs

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
SMPL_JOINT_NAMES: tuple[str, ...] = (*JOINTS22, "left_hand", "right_hand")
SMPLX_JOINT_NAMES: tuple[str, ...] = (
    *JOINTS22, "jaw", "left_eye_smplhf", "right_eye_smplhf",
    *(f"{side}_{f}{k}" for side in ("left", "right") for f in _FINGERS for k in (1, 2, 3)),
)
_PARENTS22 = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
SMPL_PARENTS: tuple[int, ...] = (*_PARENTS22, 20, 21)
SMPLX_PARENTS: tuple[int, ...] = (
    *_PARENTS22, 15, 15, 15,  # jaw, eyes
    *(p for wrist, start in ((20, 25), (21, 40)) for f in range(5)
      for p in (wrist, start + 3 * f, start + 3 * f + 1)),  # three-joint finger chains
)

# Per kind: display name, vertices, faces, joints, parents, names, face keypoint vertices, site.
_LAYOUT = {
    "smplx": dict(label="SMPL-X", v=10475, f=20908, j=55, parents=SMPLX_PARENTS, names=SMPLX_JOINT_NAMES,
                  face=SMPLX_COCO_FACE_VERTICES, site="https://smpl-x.is.tue.mpg.de", sub="smplx"),
    "smpl": dict(label="SMPL", v=6890, f=13776, j=24, parents=SMPL_PARENTS, names=SMPL_JOINT_NAMES,
                 face=SMPL_COCO_FACE_VERTICES, site="https://smpl.is.tue.mpg.de", sub="smpl"),
}
_KNOWN_JOINTS = {24: "SMPL", 52: "SMPL+H (MANO hands)", 55: "SMPL-X"}  # for hints on joint-count mismatches
_JOINT_AXIS = {"J_regressor": (0, 1, 0), "weights": (1, 1, 0), "kintree_table": (1, 1, 0),
               "posedirs": (2, 9, 1)}  # key -> (axis, divisor, offset): joints = shape[axis] // divisor + offset
_SMPLX_SHAPE_BASES = {400: 300, 20: 10}  # SMPL-X shapedirs width -> shape bases (the rest: expression)


class BodyModelNotFoundError(FileNotFoundError):
    """No SMPL-X / SMPL model file was found; ``searched`` lists every absolute path tried."""

    def __init__(self, message: str, searched: list[Path]):
        super().__init__(message)
        self.searched = searched


def _check_kind_gender(kind: str, gender: str) -> None:
    if kind not in _LAYOUT:
        raise ValueError(f"unknown body model kind {kind!r}; choose one of {tuple(_LAYOUT)}")
    if gender not in GENDERS:
        raise ValueError(f"unknown gender {gender!r}; choose one of {GENDERS}")


def body_model_file_names(kind: str, gender: str = "neutral") -> list[str]:
    """The file names (relative to a directory) looked for, in order of preference."""
    _check_kind_gender(kind, gender)
    big, short = gender.upper(), {"neutral": "neutral", "female": "f", "male": "m"}[gender]
    if kind == "smplx":
        names = [f"SMPLX_{big}.npz", f"SMPLX_{big}.pkl"]
    else:
        v100 = {"f": "basicModel_f", "m": "basicmodel_m"}.get(short)  # the official (inconsistent) case
        names = [f"SMPL_{big}.pkl", f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl"]
        names += [f"{v100}_lbs_10_207_0_v1.0.0.pkl"] if v100 else []
        names += [f"SMPL_{big}.npz"]
    sub = _LAYOUT[kind]["sub"]
    return [n for name in names for n in (name, f"{sub}/{name}")]


def find_body_model_file(kind: str, gender: str = "neutral", path: str | os.PathLike | None = None) -> Path:
    """Absolute path of the ``kind`` ("smplx" | "smpl") model file for ``gender``.

    Search order: see the module docstring. ``path`` may be a file (used as is, whatever its
    name) or a directory. Raises :class:`BodyModelNotFoundError` listing every place searched
    and how to obtain the file.
    """
    _check_kind_gender(kind, gender)
    names = body_model_file_names(kind, gender)
    places: list[tuple[str, Path]] = []
    if path is not None:
        p = Path(path).expanduser().absolute()
        if p.is_file():
            return p
        places.append(("path= argument", p))
    else:
        env = os.environ.get(BODY_MODELS_ENV)
        if env:
            places.append((f"${BODY_MODELS_ENV}", Path(env).expanduser().absolute()))
        places.append(("./body_models", Path.cwd() / "body_models"))
        places.append(("moro data dir", data_dir("body_models").expanduser().absolute()))
    searched, lines = [], []  # every absolute path tried, and the message lines naming them
    for label, root in places:
        tried = [root] if root.suffix in (".npz", ".pkl") and not root.is_dir() else [root / n for n in names]
        for candidate in tried:
            if candidate.is_file():
                return candidate
        searched += tried
        lines += [f"  [{label}] {c}" for c in tried]
    lay = _LAYOUT[kind]
    env_note = "" if path is not None or os.environ.get(BODY_MODELS_ENV) else f"  (${BODY_MODELS_ENV} is not set)\n"
    raise BodyModelNotFoundError(
        f"{lay['label']} model file ({gender}) not found. Searched, in order:\n" + "\n".join(lines) + "\n"
        + env_note + f"{lay['label']} files are licence-gated and not shipped with moro. Register and download at "
        f"{lay['site']}, then either put {names[0]} in ./body_models/ or "
        f"{data_dir('body_models').expanduser().absolute()}/, or "
        f"`export {BODY_MODELS_ENV}=/dir/with/the/file`, or pass path='/path/to/{names[0]}' "
        "(the file or its directory).",
        searched,
    )


# --------------------------------------------------------------------------- reading
def _spec(kind: str) -> dict[str, tuple[str, tuple]]:
    """Required keys -> (accepted dtype kinds, exact shape; None = any size)."""
    v, f, j = (_LAYOUT[kind][k] for k in ("v", "f", "j"))
    return {
        "v_template": ("f", (v, 3)), "f": ("iu", (f, 3)), "shapedirs": ("f", (v, 3, None)),
        "posedirs": ("f", (v, 3, (j - 1) * 9)), "J_regressor": ("f", (j, v)),
        "weights": ("f", (v, j)), "kintree_table": ("iu", (2, j)),
    }


def _load_raw(path: Path, keys: list[str]) -> dict:
    """Raw values of ``keys`` present in an .npz or .pkl file (arrays, sparse or chumpy objects)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in keys if k in z.files}
        if path.suffix == ".pkl":
            from smplfitter.common import _chumpy_stub_modules, scipy_sparse_forward_compat

            with _chumpy_stub_modules(), scipy_sparse_forward_compat(), open(path, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")
                if not isinstance(data, dict):
                    raise BodyModelFileError(f"{path}: expected a pickled dict of arrays, found {type(data).__name__}")
                # Convert inside the stub context (chumpy stubs resolve lazily).
                return {k: data[k].toarray() if hasattr(data[k], "toarray") else np.asarray(data[k])
                        for k in keys if k in data}
    except BodyModelFileError:
        raise
    except Exception as e:  # zip / unpickling / object-array errors of many types
        raise BodyModelFileError(
            f"{path}: not a readable {path.suffix} body model file ({type(e).__name__}: {e})") from e
    raise BodyModelFileError(f"{path}: unknown body model file type {path.suffix!r}; expected .npz or .pkl")


def _checked(path: Path, key: str, value, kinds: str, shape: tuple, kind: str) -> np.ndarray:
    """``value`` as an array of dtype kind in ``kinds`` and ``shape`` (floats finite, as float64)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in kinds:
        want = "a floating-point" if kinds == "f" else "an integer"
        raise BodyModelFileError(f"{path}: key {key!r} must be {want} array, found dtype {arr.dtype}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = tuple("s" if s is None else s for s in shape)
        other = [o for o in _LAYOUT if o != kind and _LAYOUT[o]["v"] in arr.shape]
        hint = f" (that is the {_LAYOUT[other[0]]['label']} layout: use load_{other[0]})" if other else ""
        joints = _JOINT_AXIS.get(key)
        if not hint and joints is not None and arr.ndim == len(shape):
            n = arr.shape[joints[0]] // joints[1] + joints[2]
            if n in _KNOWN_JOINTS and n != _LAYOUT[kind]["j"]:
                hint = (f" ({n} joints: the {_KNOWN_JOINTS[n]} layout, not {_LAYOUT[kind]['label']}'s "
                        f"{_LAYOUT[kind]['j']}; use the {_LAYOUT[kind]['label']} model file from {_LAYOUT[kind]['site']})")
        raise BodyModelFileError(
            f"{path}: key {key!r} must have shape {want} for {_LAYOUT[kind]['label']}, found {arr.shape}{hint}")
    if kinds == "f" and not np.isfinite(arr).all():
        raise BodyModelFileError(f"{path}: key {key!r} contains NaN or inf")
    return arr.astype(np.float64, copy=False) if kinds == "f" else arr


def _read(path: str | os.PathLike, kind: str) -> dict:
    path, lay, spec = Path(path), _LAYOUT[kind], _spec(kind)
    raw = _load_raw(path, list(spec))
    missing = [k for k in spec if k not in raw]
    if missing:
        raise BodyModelFileError(f"{path}: missing key(s) {missing}; a {lay['label']} model file has keys {list(spec)}")
    out = {key: _checked(path, key, raw[key], kinds, shape, kind) for key, (kinds, shape) in spec.items()}
    faces = out.pop("f").astype(np.int64)
    if faces.min() < 0 or faces.max() >= lay["v"]:
        raise BodyModelFileError(f"{path}: key 'f' has vertex indices outside 0..{lay['v'] - 1}")
    out["faces"] = faces
    sums = out["weights"].sum(1)
    if np.abs(sums - 1).max() > 1e-3:
        raise BodyModelFileError(
            f"{path}: key 'weights' rows must sum to 1, found sums in [{sums.min():.4g}, {sums.max():.4g}]")
    kintree = out.pop("kintree_table").astype(np.int64)
    parents = [-1] + kintree[0, 1:].tolist()  # first entry: -1 or 2**32-1, both meaning "none"
    if kintree[0, 0] not in (-1, 2**32 - 1) or tuple(parents) != lay["parents"]:
        raise BodyModelFileError(f"{path}: key 'kintree_table' row 0 must hold the {lay['label']} parents "
                                 f"{[2**32 - 1, *lay['parents'][1:]]}, found {kintree[0].tolist()}")
    out["parents"] = parents
    s = out["shapedirs"].shape[-1]
    if kind == "smplx":
        if s not in _SMPLX_SHAPE_BASES:
            raise BodyModelFileError(f"{path}: key 'shapedirs' must have 400 (v1.1: 300 shape + 100 expression) "
                                     f"or 20 (v1.0: 10 + 10) bases for SMPL-X, found {s}")
        n_shape = _SMPLX_SHAPE_BASES[s]
        out["expression_dirs"] = out["shapedirs"][..., n_shape:]
        out["shapedirs"] = out["shapedirs"][..., :n_shape]
    elif s < 1:
        raise BodyModelFileError(f"{path}: key 'shapedirs' has no shape bases")
    return out


def read_smplx_file(path: str | os.PathLike) -> dict:
    """Read and validate an SMPL-X file (.npz or .pkl).

    Returns float64 numpy arrays ``v_template`` (10475, 3) metres, ``shapedirs`` (10475, 3, s)
    shape bases only (s = 300 for v1.1, 10 for v1.0), ``expression_dirs`` (10475, 3, e),
    ``posedirs`` (10475, 3, 486), ``J_regressor`` (55, 10475) dense, ``weights`` (10475, 55),
    ``faces`` (20908, 3) int64 and ``parents`` (list of 55 ints, ``parents[0] == -1``).
    Raises :class:`BodyModelFileError` naming the first bad key.
    """
    return _read(path, "smplx")


def read_smpl_file(path: str | os.PathLike) -> dict:
    """Read and validate an SMPL file (.pkl, chumpy allowed, or .npz).

    Returns float64 numpy arrays ``v_template`` (6890, 3) metres, ``shapedirs`` (6890, 3, s),
    ``posedirs`` (6890, 3, 207), ``J_regressor`` (24, 6890) dense, ``weights`` (6890, 24),
    ``faces`` (13776, 3) int64 and ``parents`` (list of 24 ints).
    """
    return _read(path, "smpl")


# --------------------------------------------------------------------------- conversion
def _restrict_regressor(reg: np.ndarray, verts: np.ndarray, keep: int, faces_kept: np.ndarray) -> np.ndarray:
    """(k, v) regressor -> (k, keep): weight on vertices >= keep moves to the closest kept surface point."""
    cut = np.zeros_like(reg)
    cut[:, keep:] = reg[:, keep:]
    if not cut.any():
        return reg[:, :keep].copy()
    return reg[:, :keep] + transfer_regressor(cut, verts, verts[:keep], faces_kept)


def build_smpl_data(
    path: str | os.PathLike, kind: str, gender: str = "neutral", num_betas: int = 10, body_only: bool = False
) -> BodyModelData:
    """Convert an SMPL-X / SMPL file into a float64 :class:`BodyModelData` (see module docs).

    ``kind`` is "smplx" | "smpl"; ``gender`` only names the result. The data has v = 10475
    (9383 with ``body_only``) or 6890 vertices, j = 55 or 24 joints, s = ``num_betas``; metres.
    Uncached: :func:`load_smplx` / :func:`load_smpl` cache the result.
    """
    _check_kind_gender(kind, gender)
    if body_only and kind != "smplx":
        raise ValueError("body_only applies to SMPL-X only (SMPL has no eyeballs)")
    a, lay = _read(path, kind), _LAYOUT[kind]
    n_shape = a["shapedirs"].shape[-1]
    if not isinstance(num_betas, int) or not 1 <= num_betas <= n_shape:
        raise ValueError(f"num_betas must be an int in 1..{n_shape} for {path}, got {num_betas!r}")
    jreg, verts = a["J_regressor"], a["v_template"]
    shapedirs = a["shapedirs"][..., :num_betas]
    j_template = jreg @ verts  # (j, 3), from the full mesh
    j_shapedirs = (jreg @ shapedirs.reshape(len(verts), -1)).reshape(-1, 3, num_betas)  # (j, 3, s)
    joints22 = jreg[: len(JOINTS22)].copy()
    joint_reg = jreg.copy()  # all skeleton joints from posed vertices (parametric fitting)
    coco = np.stack([jreg[COCO17_BODY_FROM_JOINTS22[n]] if n not in lay["face"] else
                     np.bincount([lay["face"][n]], minlength=len(verts)).astype(np.float64)
                     for n in COCO17])  # (17, v): joint-regressor rows and one-hot face vertices
    faces, weights, posedirs = a["faces"], a["weights"], a["posedirs"]
    if body_only:
        keep = SMPLX_BODY_VERTICES
        faces = faces[(faces < keep).all(1)]
        joints22 = _restrict_regressor(joints22, verts, keep, faces)
        coco = _restrict_regressor(coco, verts, keep, faces)
        joint_reg = _restrict_regressor(joint_reg, verts, keep, faces)
        verts, shapedirs, posedirs, weights = verts[:keep], shapedirs[:keep], posedirs[:keep], weights[:keep]
    foot = (np.asarray(SMPL_FOOT_VERTICES, dtype=np.int64) if kind == "smpl"
            else pick_foot_vertices(verts, weights, [7, 10], [8, 11]))  # L/R ankle + foot joints
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))  # noqa: E731
    return BodyModelData(
        name=f"{kind}/{gender}" + ("/body" if body_only else ""),
        v_template=t(verts), shapedirs=t(shapedirs), j_template=t(j_template), j_shapedirs=t(j_shapedirs),
        weights=t(weights), posedirs=t(posedirs), parents=list(a["parents"]), joint_names=list(lay["names"]),
        faces=t(faces), joints22_regressor=t(joints22), coco17_regressor=t(coco), foot_vertices=t(foot),
        joint_regressor=t(joint_reg),
        meta={"source": str(Path(path).absolute()), "kind": kind, "smplfitter_name": kind, "gender": gender, "num_betas": num_betas,
              "body_only": body_only, "shape_bases_in_file": n_shape, "build_version": BUILD_VERSION,
              "hands": "full rotations, flat when identity (hands_mean not added)",
              "foot_vertices": "SMPL_FOOT_VERTICES" if kind == "smpl" else "pick_foot_vertices"},
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def smpl_cache_path(source: Path, kind: str, gender: str, num_betas: int, body_only: bool) -> Path:
    """Cache file of a converted model: keyed by the source file's sha256 and the options."""
    options = json.dumps({"file": _sha256(source), "kind": kind, "gender": gender, "num_betas": num_betas,
                          "body_only": body_only, "build_version": BUILD_VERSION}, sort_keys=True)
    key = hashlib.sha256(options.encode()).hexdigest()[:20]
    return cache_dir("body") / f"{kind}-{gender}{'-body' if body_only else ''}-b{num_betas}-{key}.safetensors"


def _load(kind, path, gender, num_betas, body_only, rebuild) -> BodyModel:
    source = find_body_model_file(kind, gender, path)
    cache = smpl_cache_path(source, kind, gender, num_betas, body_only)
    data = None
    if cache.exists() and not rebuild:
        try:
            data = BodyModelData.load(cache)
        except BodyModelFileError as e:
            log.warning("rebuilding %s: %s", cache, e)
    if data is None:
        data = build_smpl_data(source, kind, gender, num_betas, body_only)
        data.save(cache)
        log.info("converted %s into %s", source, cache)
    return BodyModel(data)


def load_smplx(
    path: str | os.PathLike | None = None, gender: str = "neutral", num_betas: int = 10,
    body_only: bool = False, rebuild: bool = False,
) -> BodyModel:
    """SMPL-X as a :class:`BodyModel` (10475 vertices, or 9383 with ``body_only``; 55 joints).

    Args:
        path: model file or directory; None searches the standard places (module docstring).
        gender: "neutral" | "female" | "male" (picks the file; only a label with an explicit file).
        num_betas: shape bases used, 1..300 (v1.1 files) or 1..10 (v1.0).
        body_only: drop the eyeballs (the paper's tokenizer mesh; module docstring).
        rebuild: ignore the cache and convert again.
    Returns:
        BodyModel named ``smplx/<gender>`` (``smplx/<gender>/body``): ``body_pose`` (..., 54, 3, 3)
        in SMPL-X joint order (``SMPLX_JOINT_NAMES[1:]``), ``betas`` (..., num_betas); metres.
    """
    return _load("smplx", path, gender, num_betas, body_only, rebuild)


def load_smpl(
    path: str | os.PathLike | None = None, gender: str = "neutral", num_betas: int = 10, rebuild: bool = False
) -> BodyModel:
    """SMPL as a :class:`BodyModel` (6890 vertices, 24 joints; ``body_pose`` (..., 23, 3, 3)).

    Args as :func:`load_smplx`; ``num_betas`` up to the file's shape bases (10 or 300).
    """
    return _load("smpl", path, gender, num_betas, False, rebuild)
