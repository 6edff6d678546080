"""The arrays that define a body model, their validation and their on-disk form.

A :class:`BodyModelData` is what every supported body (Anny, SMPL-X, SMPL) is converted into; it
is saved as one float32 safetensors file (JSON metadata in the header) so that a built model
loads in well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from moro.paths import atomic_write

FORMAT_VERSION = 1


class BodyModelFileError(ValueError):
    """A body-model file is missing keys, has wrong shapes, or is of an unknown format."""


@dataclass
class BodyModelData:
    """Arrays of a linear-blend-skinned body model (v vertices, j joints, s shape bases).

    Fields:
        name: model name, e.g. ``"anny/notoes_collapse5pc"`` or ``"smplx/neutral"``.
        v_template: (v, 3) mean-shape rest vertices, metres, canonical body frame.
        shapedirs: (v, 3, s) linear shape bases.
        j_template: (j, 3) mean-shape rest joint positions.
        j_shapedirs: (j, 3, s) shape bases of the joints.
        weights: (v, j) skinning weights, rows sum to 1.
        posedirs: (v, 3, (j-1)*9) pose-corrective bases on ``R - I`` of joints 1.., or None.
        parents: length-j list, ``parents[0] == -1``, parents precede children.
        joint_names: length-j list.
        faces: (f, 3) int64.
        joints22_regressor: (22, v) rows sum to 1 (see ``joint_sets.JOINTS22``).
        coco17_regressor: (17, v) rows sum to 1.
        foot_vertices: (4,) int64 (L heel, L toe, R heel, R toe).
        joint_regressor: (j, v) regressor of the skeleton joints from posed vertices (used by
            parametric fitting); None when the model has none.
        extra: model-specific tensors (e.g. Anny's phenotype mapping).
        meta: JSON-serialisable metadata (source, build recipe, versions).
    """

    name: str
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    j_template: torch.Tensor
    j_shapedirs: torch.Tensor
    weights: torch.Tensor
    posedirs: torch.Tensor | None
    parents: list[int]
    joint_names: list[str]
    faces: torch.Tensor
    joints22_regressor: torch.Tensor
    coco17_regressor: torch.Tensor
    foot_vertices: torch.Tensor
    joint_regressor: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    _TENSORS = (
        "v_template", "shapedirs", "j_template", "j_shapedirs", "weights", "posedirs", "faces",
        "joints22_regressor", "coco17_regressor", "foot_vertices", "joint_regressor",
    )

    def validate(self) -> None:
        """Raise :class:`BodyModelFileError` naming the first inconsistent array."""
        v = self.v_template.shape[0] if self.v_template.ndim == 2 else -1
        j = len(self.parents)
        s = self.shapedirs.shape[-1] if self.shapedirs.ndim == 3 else -1
        expected = {
            "v_template": (v, 3), "shapedirs": (v, 3, s), "j_template": (j, 3),
            "j_shapedirs": (j, 3, s), "weights": (v, j), "joints22_regressor": (22, v),
            "coco17_regressor": (17, v), "foot_vertices": (4,),
        }
        if self.posedirs is not None:
            expected["posedirs"] = (v, 3, (j - 1) * 9)
        if self.joint_regressor is not None:
            expected["joint_regressor"] = (j, v)
        for key, shape in expected.items():
            got = tuple(getattr(self, key).shape)
            if got != shape or -1 in shape:
                raise BodyModelFileError(f"{self.name}: {key} has shape {got}, expected {shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise BodyModelFileError(f"{self.name}: faces has shape {tuple(self.faces.shape)}, expected (f, 3)")
        if self.faces.numel() and (int(self.faces.min()) < 0 or int(self.faces.max()) >= v):
            raise BodyModelFileError(f"{self.name}: faces index outside 0..{v - 1}")
        if len(self.joint_names) != j:
            raise BodyModelFileError(f"{self.name}: {len(self.joint_names)} joint names for {j} joints")
        for key in ("v_template", "shapedirs", "weights", "j_template"):
            if not torch.isfinite(getattr(self, key)).all():
                raise BodyModelFileError(f"{self.name}: {key} contains NaN or inf")

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> None:
        """Write one float32 safetensors file atomically (integers stay int64)."""
        tensors = {}
        for key in self._TENSORS:
            t = getattr(self, key)
            if t is not None:
                tensors[key] = t.contiguous() if not t.is_floating_point() else t.float().contiguous()
        for key, t in self.extra.items():
            tensors[f"extra.{key}"] = t.float().contiguous() if t.is_floating_point() else t.contiguous()
        header = {
            "format": "moro-body", "format_version": str(FORMAT_VERSION), "name": self.name,
            "parents": json.dumps(self.parents), "joint_names": json.dumps(self.joint_names),
            "meta": json.dumps(self.meta),
        }
        with atomic_write(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)

    @classmethod
    def load(cls, path: str | Path) -> "BodyModelData":
        """Read a file written by :meth:`save`; raises BodyModelFileError on a foreign/old file."""
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises several types for corrupt files
            raise BodyModelFileError(f"{path}: not a readable safetensors file ({e}); delete it to rebuild") from e
        if header.get("format") != "moro-body" or header.get("format_version") != str(FORMAT_VERSION):
            raise BodyModelFileError(
                f"{path}: format {header.get('format')!r} v{header.get('format_version')}, expected "
                f"moro-body v{FORMAT_VERSION}; delete the file so that moro rebuilds it"
            )
        kwargs = {k: tensors.get(k) for k in cls._TENSORS}
        missing = [k for k, t in kwargs.items() if t is None and k not in ("posedirs", "joint_regressor")]
        if missing:
            raise BodyModelFileError(f"{path}: missing tensors {missing}; delete the file to rebuild")
        data = cls(
            name=header["name"], parents=json.loads(header["parents"]),
            joint_names=json.loads(header["joint_names"]), meta=json.loads(header["meta"]),
            extra={k[6:]: t for k, t in tensors.items() if k.startswith("extra.")}, **kwargs,
        )
        data.validate()
        return data

    def to(self, dtype: torch.dtype) -> "BodyModelData":
        """Copy with every floating tensor cast to ``dtype``."""
        out = {}
        for f in fields(self):
            val = getattr(self, f.name)
            if torch.is_tensor(val) and val.is_floating_point():
                val = val.to(dtype)
            elif isinstance(val, dict) and f.name == "extra":
                val = {k: t.to(dtype) if t.is_floating_point() else t for k, t in val.items()}
            out[f.name] = val
        return BodyModelData(**out)
