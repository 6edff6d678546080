"""Pure geometry for moro: rotations, rigid transforms, the trajectory representation, cameras.

Imports nothing else of moro (torch, roma, numpy only). Every function accepts any leading
batch shape ``...``, never broadcasts between inputs, and raises a ``ValueError`` naming the
expected shape on wrong input. Units: metres, radians, pixels. Conventions: ``docs/conventions.md``.

Modules (one concept each):
- :mod:`.rotations`  matrices, 6D (first two rows, PyTorch3D layout), rotation vectors, quaternions
- :mod:`.rigid`      apply / invert / compose rigid and similarity transforms, 4x4 matrices
- :mod:`.trajectory` absolute and canonical 9D root trajectories, first-frame canonicalisation,
  normalisation statistics, trajectory noise
- :mod:`.alignment`  Procrustes / Umeyama / rotation-sequence alignment (metrics.md formulas)
- :mod:`.camera`     pinhole projection, default focal, HMR boxes, CLIFF bbox info and
  translation, square crops (OpenCV pixel centres)
"""

from .alignment import *  # noqa: F401,F403
from .alignment import __all__ as _alignment_all
from .camera import *  # noqa: F401,F403
from .camera import __all__ as _camera_all
from .rigid import *  # noqa: F401,F403
from .rigid import __all__ as _rigid_all
from .rotations import *  # noqa: F401,F403
from .rotations import __all__ as _rotations_all
from .trajectory import *  # noqa: F401,F403
from .trajectory import __all__ as _trajectory_all

__all__ = [*_rotations_all, *_rigid_all, *_trajectory_all, *_camera_all, *_alignment_all]
