"""Body models behind one interface (:class:`BodyModel`): Anny (embedded default), SMPL-X and SMPL
(from user-supplied files), the 22-joint and COCO-17 sets, and parametric fitting."""

from moro.body.anny_model import ANNY_TOPOLOGIES, AnnyBody, load_anny
from moro.body.joint_sets import COCO17, JOINTS22
from moro.body.model import BodyModel, BodyOutput
from moro.body.model_data import BodyModelData, BodyModelFileError
from moro.body.smpl_files import BodyModelNotFoundError, find_body_model_file, load_smpl, load_smplx

__all__ = [
    "ANNY_TOPOLOGIES", "AnnyBody", "BodyModel", "BodyModelData", "BodyModelFileError",
    "BodyModelNotFoundError", "BodyOutput", "COCO17", "JOINTS22", "find_body_model_file", "load_anny",
    "load_smpl", "load_smplx",
]
