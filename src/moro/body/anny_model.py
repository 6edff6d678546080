"""Anny (PyPI ``anny==0.6.2``, Apache-2.0 code, CC0 assets): moro's embedded, offline body model.

Anny is converted once per topology into moro's LBS layout (:class:`BodyModelData`) and cached as
one float32 safetensors file, ``<cache>/body/anny-<topology>-v<N>.safetensors``
(cache root: ``$MORO_CACHE_DIR``, see :mod:`moro.paths`). Later loads read only that file.

What the conversion does (all exact unless stated):
* Frame: Anny is Z up, facing -Y; every array is rotated once into the canonical body frame
  (Y up, facing +Z, left = +X) by ``ANNY_TO_CANONICAL``.
* Shape: Anny's 136 compact linear blendshapes are the shape space (``betas``). Its six
  phenotype sliders (gender, age, muscle, weight, height, proportions, each in [0, 1]) map to
  betas through Anny's own interpolation, stored in the file (:meth:`AnnyBody.phenotype_to_betas`).
* Rig (36 joints): fingers, metacarpals and eyes are merged into wrist/head,
  ``pelvis.*`` into the root, and the five toe chains of each foot into one ``toes`` joint placed
  at the mean of the toes' first heads (the ball of the foot) — SMPL-like articulation. Merging is
  exact for poses in which the merged bones keep their rest rotation.
* Pose: SMPL convention (parent-relative rotations in canonical rest axes). Anny's skinning is
  plain LBS without pose correctives, so the conversion reproduces Anny's vertices to ~1e-6 m.
* 22 scoring joints (``joint_sets.JOINTS22``): each is a point attached to one bone, defined from
  Anny's rest bone heads (table ``JOINTS22_DEFINITION``), and regressed from vertices by a
  non-negative, sum-to-one regressor over the 64 rest vertices nearest to it, fitted (NNLS, see
  :func:`moro.body.regressors.fit_vertex_regressor`) over 96 adult shapes
  (``ADULT_PHENOTYPE_RANGE``), a quarter at rest and the rest in random poses (0.15 rad per axis).
  Measured on ``notoes_collapse5pc`` against the definition: 6.5 mm mean at rest, 7.9 mm at
  0.15 rad random poses; worst are the knees (~20 mm) and spine3 (~14 mm), because Anny's bone
  heads do not move affinely with the surrounding surface across phenotypes. Predictions and
  ground truth are scored with the same regressor, so this offsets the joint's definition, not
  the scores' comparability. The same procedure gives ``joint_regressor`` for the 36 rig joints
  (used by parametric fitting).
* COCO-17: Anny's own COCO regressor (defined on the default ``anny`` topology), transferred to
  other topologies by closest-surface barycentric mapping (:func:`~moro.body.regressors.transfer_regressor`).
  On ``notoes_collapse5pc`` the transferred keypoints stay within 0.6-5.6 mm (mean per keypoint)
  of the default topology's on random poses (0.25 rad per axis).
* Foot vertices: heel and toe tip of each sole (:func:`moro.body.regressors.pick_foot_vertices`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from moro.body.model import BodyModel
from moro.body.model_data import BodyModelData, BodyModelFileError
from moro.body.regressors import fit_vertex_regressor, nearest_vertices, pick_foot_vertices, transfer_regressor
from moro.paths import cache_dir

log = logging.getLogger(__name__)

ANNY_VERSION = "0.6.2"
BUILD_VERSION = 1  # bump when the conversion changes: old cache files are then rebuilt
ANNY_TOPOLOGIES = (
    "anny", "anny-noeyes-notongue", "notoes",
    "notoes_collapse10pc", "notoes_collapse5pc", "notoes_collapse3pc",
)
# Rotation taking Anny's frame (Z up, facing -Y) to the canonical one (Y up, facing +Z).
ANNY_TO_CANONICAL = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)





# Body rig: (joint name, Anny bones whose heads average to the joint and that it replaces).
# Bones not listed follow their nearest listed ancestor.
BODY_RIG: list[tuple[str, list[str]]] = (
    [("root", ["root"])]
    + [(f"{b}.{s}", [f"{b}.{s}"] if b != "toes" else [f"toe{i}-1.{s}" for i in range(1, 6)])
       for s in ("L", "R") for b in ("upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot", "toes")]
    + [(b, [b]) for b in ("spine05", "spine04", "spine03", "spine02", "spine01")]
    + [(f"{b}.{s}", [f"{b}.{s}"]) for s in ("L", "R")
       for b in ("clavicle", "shoulder01", "upperarm01", "upperarm02", "lowerarm01", "lowerarm02", "wrist")]
    + [(b, [b]) for b in ("neck01", "neck02", "neck03", "head")]
)

# JOINTS22 (SMPL order) as (rig joint the point moves with, Anny bones whose rest heads average to it).
JOINTS22_DEFINITION: list[tuple[str, list[str]]] = [
    ("root", ["root"]),                                   # pelvis
    ("upperleg01.L", ["upperleg01.L"]), ("upperleg01.R", ["upperleg01.R"]),  # hips
    ("spine03", ["spine03"]),                             # spine1 (lower lumbar)
    ("lowerleg01.L", ["lowerleg01.L"]), ("lowerleg01.R", ["lowerleg01.R"]),  # knees
    ("spine02", ["spine02"]),                             # spine2
    ("foot.L", ["foot.L"]), ("foot.R", ["foot.R"]),       # ankles
    ("spine01", ["spine01"]),                             # spine3 (chest)
    ("toes.L", [f"toe{i}-1.L" for i in range(1, 6)]),     # left foot (ball of the foot)
    ("toes.R", [f"toe{i}-1.R" for i in range(1, 6)]),
    ("neck01", ["neck01"]),                               # neck (base)
    ("clavicle.L", ["clavicle.L", "shoulder01.L"]),       # collars: mid-clavicle
    ("clavicle.R", ["clavicle.R", "shoulder01.R"]),
    ("head", ["head"]),                                   # head (skull base)
    ("upperarm01.L", ["upperarm01.L"]), ("upperarm01.R", ["upperarm01.R"]),  # shoulders
    ("lowerarm01.L", ["lowerarm01.L"]), ("lowerarm01.R", ["lowerarm01.R"]),  # elbows
    ("wrist.L", ["wrist.L"]), ("wrist.R", ["wrist.R"]),   # wrists
]


# Phenotype ranges of plausible adults (statures ~1.3-2.2 m): the regressors are fitted over
# them and the synthetic world samples from them. Age 0 is a newborn, height 1 a ~2.3 m giant.
ADULT_PHENOTYPE_RANGE: dict[str, tuple[float, float]] = {
    "gender": (0.0, 1.0), "age": (0.5, 1.0), "muscle": (0.0, 1.0),
    "weight": (0.1, 0.9), "height": (0.2, 0.8), "proportions": (0.2, 0.8),
}


def sample_adult_phenotypes(n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """(n, 6) phenotypes drawn uniformly within ``ADULT_PHENOTYPE_RANGE`` (label order of Anny)."""
    lo, hi = (torch.tensor(x, dtype=dtype) for x in zip(*ADULT_PHENOTYPE_RANGE.values()))
    return lo + (hi - lo) * torch.rand(n, len(lo), generator=generator, dtype=dtype)


class AnnyBody(BodyModel):
    """A :class:`BodyModel` built from Anny, plus the phenotype -> betas mapping."""

    def __init__(self, data: BodyModelData):
        super().__init__(data)
        # Phenotype mapping tensors (float64, CPU): used only by phenotype_to_betas.
        self._extra = {k: v.double() for k, v in data.extra.items()}

    @property
    def phenotype_labels(self) -> list[str]:
        return list(self.meta["phenotype_labels"])

    def phenotype_to_betas(self, phenotypes: torch.Tensor) -> torch.Tensor:
        """Anny phenotype sliders (..., 6) in [0, 1] -> betas (..., 136).

        Order of the sliders: :attr:`phenotype_labels` (gender, age, muscle, weight, height,
        proportions). Values outside [0, 1] raise ValueError.
        """
        from anny.models.phenotype import phenotype_blendshape_weights

        n = len(self.phenotype_labels)
        if phenotypes.shape[-1:] != (n,):
            raise ValueError(f"phenotypes must be (..., {n}) ordered {self.phenotype_labels}, got {tuple(phenotypes.shape)}")
        if not torch.isfinite(phenotypes).all() or phenotypes.min() < 0 or phenotypes.max() > 1:
            raise ValueError("phenotype values must be finite and within [0, 1]")
        flat = phenotypes.reshape(-1, n).double()
        anchors = {k[7:]: v.double() for k, v in self._extra.items() if k.startswith("anchor.")}
        w = phenotype_blendshape_weights(
            flat, self.phenotype_labels, anchors, self._extra["mask"].double(), extrapolate=False
        )
        betas = w @ self._extra["projection"].double()
        return betas.to(phenotypes).reshape(phenotypes.shape[:-1] + (self.num_betas,))


def _anny_arrays(model) -> dict:
    """Rest arrays of an Anny model in the canonical frame, float64 numpy/torch."""
    c = ANNY_TO_CANONICAL
    j = model.bone_count
    w = torch.zeros(model.template_vertices.shape[0], j, dtype=torch.float64)
    w.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.double())
    return dict(
        names=list(model.bone_labels), parents=list(model.bone_parents),
        v_template=model.template_vertices.double() @ c.T,
        shapedirs=torch.einsum("svc,dc->vds", model.blendshapes.double(), c),
        heads=model.template_bone_heads.double() @ c.T,
        head_dirs=torch.einsum("sjc,dc->jds", model.bone_heads_blendshapes.double(), c),
        weights=w, faces=model.faces.long(),
    )


def _rig(arrays: dict) -> tuple[list[str], list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reduce Anny's skeleton to BODY_RIG: names, parents, j_template, j_shapedirs, weights."""
    names, parents = arrays["names"], arrays["parents"]
    spec = BODY_RIG
    index = {b: i for i, (_, bones) in enumerate(spec) for b in bones}
    owner = []
    for b, (name, p) in enumerate(zip(names, parents)):
        owner.append(index[name] if name in index else owner[p])
    new_parents = [-1] + [owner[parents[names.index(bones[0])]] for _, bones in spec[1:]]
    heads, dirs = arrays["heads"], arrays["head_dirs"]
    j_t = torch.stack([heads[[names.index(b) for b in bones]].mean(0) for _, bones in spec])
    j_d = torch.stack([dirs[[names.index(b) for b in bones]].mean(0) for _, bones in spec])
    w = torch.zeros(arrays["weights"].shape[0], len(spec), dtype=torch.float64)
    w.index_add_(1, torch.tensor(owner), arrays["weights"])
    return [n for n, _ in spec], new_parents, j_t, j_d, w


def _point_regressor(
    body: "AnnyBody", arrays: dict, rig_names: list[str], points: list[tuple[str, list[str]]], samples: int, seed: int
) -> torch.Tensor:
    """Fit a (len(points), v) vertex regressor on adult shapes in moderate random poses (0.15 rad).

    ``points``: (rig joint the point moves with, Anny bones whose rest heads average to it).
    """
    from moro.geometry.rotations import rotvec_to_rotmat

    g = torch.Generator().manual_seed(seed)
    names = arrays["names"]
    betas = body.phenotype_to_betas(sample_adult_phenotypes(samples, g, torch.float64))
    pose = rotvec_to_rotmat(0.15 * torch.randn(samples, body.num_joints - 1, 3, generator=g, dtype=torch.float64))
    pose[: samples // 4] = torch.eye(3, dtype=torch.float64)  # a quarter in the rest pose
    out = body(pose, betas)
    rest_verts, rest_joints = body.shaped(betas)
    heads = arrays["heads"] + torch.einsum("jcs,ns->njc", arrays["head_dirs"], betas)
    rows = []
    for attach, bones in points:
        b = rig_names.index(attach)
        x_rest = heads[:, [names.index(n) for n in bones]].mean(1)  # (n, 3)
        target = out.joints[:, b] + (out.global_rotmats[:, b] @ (x_rest - rest_joints[:, b]).unsqueeze(-1)).squeeze(-1)
        k = min(64, body.num_vertices // 8)
        cand = nearest_vertices(x_rest[0:1].numpy(), rest_verts[0].numpy(), k)[0]
        rows.append(fit_vertex_regressor(out.vertices.numpy(), target.numpy(), cand))
    return torch.from_numpy(np.stack(rows))


def _coco_regressor_default_topology() -> tuple[torch.Tensor, torch.Tensor]:
    """Anny's COCO-17 regressor on the default topology: ((17, v), rest vertices (v, 3))."""
    import anny

    model = anny.Anny(topology="anny").to(torch.float64)
    reg = anny.KeypointsRegressor.coco(model).regression_weights[:17].double()
    return reg, model.template_vertices.double() @ ANNY_TO_CANONICAL.T


def build_anny_data(topology: str = "notoes_collapse5pc", seed: int = 0) -> BodyModelData:
    """Convert Anny ``topology`` into moro's layout (slow: 5 s to a few minutes; cached by :func:`load_anny`)."""
    import anny

    _check_topology(topology)
    t0 = time.time()
    model = anny.Anny(topology=topology).to(torch.float64)
    arrays = _anny_arrays(model)
    names, parents, j_t, j_d, w = _rig(arrays)
    extra = {
        "mask": model.stacked_phenotype_blend_shapes_mask.double(),
        "projection": model.phenotype_blendshape_projection.double(),
        **{f"anchor.{k}": v.double() for k, v in model.anchors.named_buffers()},
    }
    foot_l = [names.index(n) for n in ("foot.L", "toes.L")]
    foot_r = [names.index(n) for n in ("foot.R", "toes.R")]
    v_template = arrays["v_template"]
    data = BodyModelData(
        name=f"anny/{topology}", v_template=v_template, shapedirs=arrays["shapedirs"],
        j_template=j_t, j_shapedirs=j_d, weights=w, posedirs=None, parents=parents, joint_names=names,
        faces=arrays["faces"], joints22_regressor=torch.zeros(22, len(v_template), dtype=torch.float64),
        coco17_regressor=torch.zeros(17, len(v_template), dtype=torch.float64),
        foot_vertices=torch.from_numpy(pick_foot_vertices(v_template.numpy(), w.numpy(), foot_l, foot_r)),
        extra=extra,
        meta={"source": "anny", "anny_version": anny.__version__ if hasattr(anny, "__version__") else ANNY_VERSION,
              "topology": topology, "build_version": BUILD_VERSION, "seed": seed,
              "phenotype_labels": list(model.phenotype_labels)},
    )
    fit_body = AnnyBody(data.to(torch.float64)).double()
    data.joints22_regressor = _point_regressor(fit_body, arrays, names, JOINTS22_DEFINITION, 96, seed)
    data.joint_regressor = _point_regressor(fit_body, arrays, names, BODY_RIG, 96, seed)
    coco_src, src_verts = _coco_regressor_default_topology()
    if topology == "anny":
        data.coco17_regressor = coco_src
    else:
        data.coco17_regressor = torch.from_numpy(transfer_regressor(
            coco_src.numpy(), src_verts.numpy(), v_template.numpy(), arrays["faces"].numpy()))
    log.info("built Anny %s in %.1f s", topology, time.time() - t0)
    return data


def _check_topology(topology: str) -> None:
    if topology not in ANNY_TOPOLOGIES:
        raise ValueError(f"unknown Anny topology {topology!r}; choose one of {ANNY_TOPOLOGIES}")


def anny_cache_path(topology: str) -> Path:
    """Where the built model for ``topology`` is cached."""
    _check_topology(topology)
    return cache_dir("body") / f"anny-{topology}-v{BUILD_VERSION}.safetensors"


def load_anny(topology: str = "notoes_collapse5pc", rebuild: bool = False) -> AnnyBody:
    """The Anny body model for ``topology``, built on first use and cached (see module docs).

    After the first build (seconds to minutes, depending on the topology) a load takes < 1 s.
    """
    path = anny_cache_path(topology)
    data = None
    if path.exists() and not rebuild:
        try:
            data = BodyModelData.load(path)
        except BodyModelFileError as e:
            log.warning("rebuilding %s: %s", path, e)
    if data is None:
        data = build_anny_data(topology)
        data.save(path)
    return AnnyBody(data)
