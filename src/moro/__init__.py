"""moro: recover 3D human motion from monocular video, robust to occlusion (MoRo, 3DV 2026).

Data flow (imports point downward only)::

    cli -> inference | training | metrics | synth -> model | data | viz
        -> tokenizer | synth -> body -> geometry

Conventions used everywhere (see ``docs/conventions.md``): metres and radians inside;
camera frame = OpenCV (x right, y down, z forward); world frame = gravity-aligned, Y up,
ground plane y = 0; body canonical frame = SMPL's (Y up, facing +Z, body's left = +X);
6D rotations = first two *rows* of R (PyTorch3D layout).
"""

__version__ = "0.1.0"
