"""Converters from other projects' weight files into moro checkpoints.

- :mod:`.official`            ``convert_official``: the authors' released MoRo (``moro convert official``)
- :mod:`.official_layout`     the authors' 792 keys as rules, and their training-stage subsets
- :mod:`.official_io`         safe reading of their checkpoints, ``amass_cum_traj.pkl``, connection files
- :mod:`.official_body`       fingerprint of their SMPL-X, checked against a user's file
- :mod:`.official_crosscheck` the optional ``tokenizer.ckpt`` / ``vit_pose_hmr2.pth`` checks
"""

from moro.convert.official import ConversionReport, OfficialTarget, convert_official, map_official_state
from moro.convert.official_body import BodyModelMismatchError, check_smplx_against_reference
from moro.convert.official_io import OfficialConversionError, TrajectoryStatsNotFoundError, read_trajectory_stats

__all__ = [
    "convert_official",
    "map_official_state",
    "OfficialTarget",
    "ConversionReport",
    "OfficialConversionError",
    "TrajectoryStatsNotFoundError",
    "BodyModelMismatchError",
    "check_smplx_against_reference",
    "read_trajectory_stats",
]
