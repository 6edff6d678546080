"""Builders for the inference tests (and benchmarks/infer_memory.py): a randomly initialised tiny MoRo
on Anny's 615-vertex mesh, test videos in several containers, a rendered walking person."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from moro.model import MoRo, MoRoConfig
from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone
from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig

# A person upright in front of the camera, facing it: R = diag(1, -1, -1) as 6D rows, 3.5 m ahead.
STANDING_TRAJ = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.3, 3.5]


def anny_tiny_moro(body, seed: int = 0, width: int = 64, heads: int = 2, depth: int = 1) -> MoRo:
    """A random tiny MoRo whose tokenizer decodes Anny ``notoes_collapse5pc`` meshes.

    Built from the ``tiny`` presets (tokenizer, MoRo, image encoder, small_cnn backbone) with a
    narrower transformer for speed. Random weights would place the person at the camera centre;
    the decoder's trajectory head is damped and biased to :data:`STANDING_TRAJ`, and the tokenizer's
    template is Anny's rest mesh, so the decoded meshes are person-like and in view.
    """
    torch.manual_seed(seed)  # module init only
    tok = MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), body.faces.numpy(), body.num_vertices)
    v_rest, j_rest = body.shaped(body.zero_betas())
    tok.set_template(v_rest - j_rest[0])
    cfg = MoRoConfig.tiny(tok.config, tok.num_vertices)
    cfg.transformer.width, cfg.transformer.num_heads = width, heads
    cfg.transformer.motion_depth = cfg.transformer.decoder_depth = depth
    icfg = ImageEncoderConfig.tiny()
    icfg.width, icfg.num_heads, icfg.num_layers = width, heads, 1
    model = MoRo(cfg, tok, ImageEncoder(icfg), backbone=build_image_backbone(icfg))
    with torch.no_grad():
        head = model.decoder.d_traj_regressor
        head.weight.mul_(0.01)
        head.bias.copy_(torch.tensor(STANDING_TRAJ))
    return model.eval()


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0, codec: str | None = None) -> Path:
    """Encode (t, H, W, 3) uint8 RGB frames (even H, W) with PyAV; the codec follows the suffix."""
    import av

    path = Path(path)
    codec = codec or {".mp4": "libx264", ".mov": "libx264", ".avi": "mpeg4", ".mkv": "libx264"}[path.suffix]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "16", "preset": "ultrafast", "bf": "0"}
        else:
            s.bit_rate = 4_000_000
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def pattern_frames(t: int, height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """(t, H, W, 3) uint8 smooth moving colour patterns (compress well, differ per frame)."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((t, height, width, 3), np.uint8)
    for i in range(t):
        for c in range(3):
            out[i, :, :, c] = (127 + 100 * np.sin(0.15 * x + 0.1 * y * (c + 1) + 0.3 * i + seed + c)).astype(np.uint8)
    return out


def render_person(body, num_frames: int = 30, width: int = 320, height: int = 240, seed: int = 3,
                  types=("walk",), focal: float = 300.0):
    """Render Anny walking past a static camera (EGL or software renderer).

    Returns:
        dict with ``frames`` (t, H, W, 3) uint8, ``K`` (3, 3), ``boxes`` (t, 3) HMR boxes around
        the projected mesh (x1.2), ``vertices_cam`` (t, v, 3).
    """
    from moro.inference.boxes import xyxy_to_hmr
    from moro.synth.motion import generate_motion
    from moro.synth.render import Background, Camera, Material, Scene, make_renderer

    m = generate_motion(body, num_frames, seed=seed, types=list(types))
    V = body(m.body_pose, m.betas, m.root_rot, m.root_trans).vertices.numpy()
    c = V.reshape(-1, 3).mean(0)
    cam = Camera.look_at(c + np.array([0.5, 0.2, 4.5]), c, focal, width, height)
    rest = body.shaped(m.betas)[0].numpy()
    scene = Scene(body.faces.numpy(), rest, Material([0.8, 0.3, 0.2], lower_colour=[0.2, 0.2, 0.5], split_y=0.9),
                  Material([0.5, 0.5, 0.45], [0.4, 0.4, 0.35], "checker", 1.0),
                  Background([0.8, 0.8, 0.85], [0.5, 0.6, 0.9]))
    frames, boxes = [], []
    with make_renderer() as r:
        r.set_scene(scene)
        for i in range(num_frames):
            frames.append(r.render(cam, V[i], i).rgb)
            uv, _ = cam.project(V[i])
            boxes.append(xyxy_to_hmr(np.r_[uv.min(0), uv.max(0)]))
    return {"frames": np.stack(frames), "K": cam.K.copy(), "boxes": np.stack(boxes),
            "vertices_cam": cam.world_to_camera(V)}
