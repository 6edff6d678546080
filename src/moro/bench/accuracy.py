"""The occlusion accuracy table (``moro bench accuracy``): decode variants on ``bench/occ`` and ``bench/clean``.

Per sequence of the synthetic benchmark (``moro synth --split bench``): the video frames are
cropped around the detector-like boxes ``box_det`` (no ground truth in the input), the model's
backbone turns the crops into tokens once (an on-disk store), and every row decodes from them:

================== ===============================================================================
row                decoding
================== ===============================================================================
moro               500-frame windows, K = 5 masked passes (the default of ``moro infer``)
moro K=1/3/10      the same with K passes
moro no carry      moro without the heading carry (``DecodingConfig(heading_carry=False)``, moro.inference.heading)
moro no prior      decoder only, zero motion features (``DecodingConfig(motion_prior=False)``)
per-frame          every frame alone, ``WindowConfig(size=1, overlap=0, drop=0)``, K = 5; its token
                   smoother also sees the frame alone (no temporal context anywhere)
per-frame+gaussian per-frame outputs smoothed over time (:mod:`moro.bench.filters`), parameters
per-frame+one-euro tuned by grid search on the val split (lowest MPJPE-all)
mean pose          moro's decoded trajectory (root rotation and translation) with one constant body in
                   every frame: the mean local mesh of the val split's ground truth (its bodies posed
                   and averaged vertex by vertex; the L2-best constant mesh). A reference: the columns
                   where moro does no better than this row are carried by the trajectory alone, not
                   by the body pose the network reads from the images
moro averaged pose moro with every frame's local mesh (decoded, root-relative) replaced by the
                   sequence's vertex-wise mean of them, placed with moro's trajectory: no better than
                   moro's own mean body if the frame-to-frame pose carries nothing
================== ===============================================================================

Scored joints are the **network's own mesh joints**: the decoded camera-frame mesh (tokens ->
smoother -> tokenizer decoder -> placed with the refined trajectory) through the body model's
22-joint regressor, the same regressor as the ground truth; no parametric fit (it would add
~0.2 s per frame and smooth nothing). Predictions are written in moro's prediction format
(``OUT/pred/<row>/<sequence>.npz``) and scored by the protocol code of ``moro eval --protocol synth``
(:func:`moro.metrics.protocols.evaluate`). ``--quick`` scores the first frames of a few sequences
(the ground truth is cut to the same frames).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from moro.bench.filters import GAUSSIAN_GRID, ONE_EURO_GRID, gaussian_smooth, grid_search, one_euro

log = logging.getLogger(__name__)

__all__ = ["AccuracyConfig", "VARIANTS", "run_accuracy", "summary_line", "headline_ratios"]

# row -> (window config kwargs or None = default, iterations, motion prior, heading carry)
VARIANTS: dict[str, tuple[dict | None, int, bool, bool]] = {
    "moro": (None, 5, True, True),
    "per-frame": ({"size": 1, "overlap": 0, "drop": 0}, 5, True, False),
    "moro no carry": (None, 5, True, False),  # without the heading carry (moro.inference.heading)
    "moro no prior": (None, 1, False, True),  # decoder only: every pass is the same, one suffices
    "moro K=1": (None, 1, True, True),
    "moro K=3": (None, 3, True, True),
    "moro K=10": (None, 10, True, True),
}
SMOOTHED = ("per-frame+gaussian", "per-frame+one-euro")
MEAN_POSE = "mean pose"
AVERAGED_POSE = "moro averaged pose"
ROW_NOTES = {  # the reference rows, explained under the table of RESULTS.md
    MEAN_POSE: "moro's decoded trajectory (root rotation and translation) carrying one constant body in every frame, "
               "the vertex-wise mean of the validation split's ground-truth meshes; where moro is no better than this "
               "row, its figures come from the trajectory, not from a body pose read from the images.",
    AVERAGED_POSE: "moro with each frame's decoded local mesh replaced by the sequence's vertex-wise mean of them "
                   "(same trajectory); as good as moro where the frame-to-frame changes of the decoded pose carry nothing.",
}
ROWS = ("moro", "per-frame", *SMOOTHED, MEAN_POSE, AVERAGED_POSE, "moro no carry", "moro no prior", "moro K=1", "moro K=3", "moro K=10")


@dataclass
class AccuracyConfig:
    """Options of ``moro bench accuracy``."""

    bench: Path = Path("/work/data/synth/bench")  # split of `moro synth --split bench` (occ/ and clean/)
    val: Path = Path("/work/data/synth/val")  # tuning split of the smoothing baselines
    out: Path = Path("runs/bench-accuracy")  # predictions, eval files, per-frame errors
    checkpoint: str | None = None  # tiny MoRo (default: shipped; else random weights, said loudly)
    quick: bool = False
    sequences: int | None = None  # per half (default all; quick 1)
    frames: int | None = None  # first frames of each sequence (default all; quick 60)
    val_sequences: int | None = None  # default 10 (quick 1)
    device: str = "cpu"
    vertices: bool = True  # write vertices_cam (PVE) when the split saved the mesh
    sweep_halves: tuple[str, ...] = ("occ", "clean")  # halves that get the K=1/3/10 rows (quick: occ)
    rows: tuple[str, ...] | None = None  # only these rows of ROWS (moro and per-frame always run); None = all
    halves: tuple[str, ...] = ("occ", "clean")  # bench halves to score

    def resolved(self) -> "AccuracyConfig":
        q = self.quick
        c = AccuracyConfig(**{**asdict(self)})
        c.bench, c.val, c.out = Path(self.bench), Path(self.val), Path(self.out)
        c.sequences = self.sequences if self.sequences is not None else (1 if q else None)
        c.frames = self.frames if self.frames is not None else (60 if q else None)
        c.val_sequences = self.val_sequences if self.val_sequences is not None else (1 if q else 10)
        if q and self.sweep_halves == ("occ", "clean"):
            c.sweep_halves = ("occ",)
        return c


# ------------------------------------------------------------------ per sequence
@torch.no_grad()
def sequence_tokens(model, seq, frames: int, folder: Path, batch: int = 32):
    """Backbone tokens of the first ``frames`` frames, cropped at ``box_det`` (the ground-truth box where the
    detector-like box is empty): (FrameStore, bbox info (t, 3))."""
    from moro.inference.crops import backbone_batch, bbox_info, crop_frame, crop_geometry
    from moro.inference.loading import backbone_of
    from moro.inference.store import FrameStore

    bb = backbone_of(model, inference=True)
    device = next(model.parameters()).device
    size, width = crop_geometry(bb)
    from moro.training.synth_data import MIN_BOX_SCALE

    boxes = seq.labels["box_det"][:frames].astype(np.float64).copy()
    empty = ~np.isfinite(boxes).all(1) | (boxes[:, 2] < MIN_BOX_SCALE)  # the detector-like box found nothing
    boxes[empty] = seq.labels["box_gt"][:frames][empty]  # same rule as training (moro.training.synth_data)
    writer = FrameStore.create(folder, "tokens", (bb.num_patches, bb.dim), np.float16)
    crops: list[np.ndarray] = []
    for i, rgb in enumerate(seq.frames(0, frames)):
        crops.append(crop_frame(rgb, boxes[i], size))
        if len(crops) == batch or i == frames - 1:
            writer.append(bb(backbone_batch(np.stack(crops), width=width).to(device)).float().cpu().numpy())
            crops.clear()
    return writer.close(), bbox_info(seq.labels["K"], boxes)


def place(local: torch.Tensor, traj: torch.Tensor) -> torch.Tensor:
    """Local meshes (t, v, 3) or one (1, v, 3) -> camera-frame meshes (t, v, 3) ``local @ R^T + t`` with
    ``traj`` (t, 9) ``[6D, t (m)]``; :func:`local_meshes` is its inverse."""
    from moro.geometry import rot6d_to_rotmat

    return local @ rot6d_to_rotmat(traj[:, :6]).transpose(-1, -2) + traj[:, None, 6:]


@torch.no_grad()
def meshes(model, ids: np.ndarray, traj: np.ndarray, temporal: bool = True, chunk: int = 256) -> torch.Tensor:
    """Camera-frame network meshes (t, v, 3): ids (t, n) -> smoother -> tokenizer decoder, placed with traj (t, 9).

    ``temporal=False`` runs the token smoother on each frame alone (the per-frame baseline).
    """
    device = model.token_emb.weight.device
    x = model.token_emb(torch.from_numpy(ids.astype(np.int64)).to(device))  # (t, n, dc)
    z = model.smoother(x[None])[0] if temporal else model.smoother(x[:, None])[:, 0]
    out = []
    for a in range(0, len(z), chunk):
        local = model.tokenizer.decode_latents(z[a : a + chunk])
        out.append(place(local, torch.from_numpy(traj[a : a + chunk]).to(local)))
    return torch.cat(out).cpu()


def decode_variant(model, body, tokens, info: np.ndarray, work: Path, name: str) -> dict[str, np.ndarray]:
    """One row of :data:`VARIANTS` on one sequence: ``{"joints_cam", "feet_cam", "vertices_cam"}`` (t, ., 3)."""
    from moro.inference.decoding import DecodingConfig
    from moro.inference.windows import WindowConfig, decode_windows

    wkw, k, prior, carry = VARIANTS[name]
    folder = work / name.replace(" ", "_").replace("=", "")
    dec = decode_windows(model, tokens, info, folder, WindowConfig(**wkw) if wkw else WindowConfig(),
                         DecodingConfig(k, motion_prior=prior, heading_carry=carry))
    t = len(tokens)
    traj = dec["traj"].read(0, t).astype(np.float32)
    verts = meshes(model, dec["ids"].read(0, t), traj, temporal=wkw is None)
    shutil.rmtree(folder, ignore_errors=True)
    return {**_scored(body, verts), "traj": traj}


def _scored(body, verts: torch.Tensor) -> dict[str, np.ndarray]:
    """Camera-frame meshes (t, v, 3) -> ``{"joints_cam" (t, 22, 3), "feet_cam" (t, 4, 3), "vertices_cam"}``."""
    with torch.no_grad():
        v = verts.to(body.v_template)
        return {"joints_cam": body.joints22(v).numpy(), "feet_cam": body.foot_points(v).numpy(), "vertices_cam": verts.numpy()}


@torch.no_grad()
def mean_local_mesh(body, seqs, frames: int | None = None) -> torch.Tensor:
    """(v, 3) float32 mean local mesh (root joint at the origin, root rotation identity, metres) of the
    ground-truth bodies of ``seqs`` (synthetic sequences: ``body_pose`` (t, j-1, 3, 3), ``betas``), over
    their first ``frames`` frames (None: all), averaged vertex by vertex."""
    total, count = None, 0
    for seq in seqs:
        t = min(seq.num_frames, frames or seq.num_frames)
        pose = torch.as_tensor(np.asarray(seq.labels["body_pose"][:t]), dtype=torch.float32)
        betas = torch.as_tensor(np.asarray(seq.labels["betas"]), dtype=torch.float32)
        for a in range(0, t, 256):
            v = body(pose[a : a + 256], betas).vertices.double().sum(0)
            total = v if total is None else total + v
        count += t
    if not count:
        raise ValueError("mean_local_mesh needs at least one frame")
    return (total / count).float()


def local_meshes(verts_cam: np.ndarray, traj: np.ndarray) -> torch.Tensor:
    """Camera-frame meshes (t, v, 3) placed with ``traj`` (t, 9) -> their local meshes (t, v, 3), float64: the
    inverse of :func:`place`."""
    from moro.geometry import rot6d_to_rotmat

    tr = torch.from_numpy(np.asarray(traj, np.float64))
    return (torch.from_numpy(np.asarray(verts_cam, np.float64)) - tr[:, None, 6:]) @ rot6d_to_rotmat(tr[:, :6])


def averaged_pose_variant(body, verts_cam: np.ndarray, traj: np.ndarray) -> dict[str, np.ndarray]:
    """The ``moro averaged pose`` row: the vertex-wise mean of the local meshes of ``verts_cam`` (t, v, 3), placed
    in every frame with ``traj`` (t, 9)."""
    return mean_pose_variant(body, local_meshes(verts_cam, traj).mean(0).float(), traj)


def mean_pose_variant(body, mean_local: torch.Tensor, traj: np.ndarray) -> dict[str, np.ndarray]:
    """The ``mean pose`` row: ``mean_local`` (v, 3) placed in every frame with ``traj`` (t, 9) ``[6D, t (m)]``."""
    tr = torch.from_numpy(np.asarray(traj, np.float32))
    return _scored(body, place(mean_local.to(tr)[None], tr))


def smooth(outputs: dict[str, np.ndarray], kind: str, params: dict, fps: float) -> dict[str, np.ndarray]:
    """Per-frame outputs smoothed over time by ``kind`` ("gaussian" / "one-euro") with ``params``."""
    f = (lambda a: gaussian_smooth(a, **params)) if kind == "gaussian" else (lambda a: one_euro(a, fps, **params))
    return {k: f(v).astype(np.float32) for k, v in outputs.items() if k != "traj"}


def _gt_cut(gt, frames: int | None):
    """The ground truth restricted to its first ``frames`` frames (quick runs)."""
    from dataclasses import replace

    if frames is None or frames >= gt.num_frames:
        return gt
    cut = {k: (getattr(gt, k)[:frames] if getattr(gt, k) is not None else None)
           for k in ("frame_ids", "joints_cam", "joints_world", "T_w2c", "K", "visibility", "vertices_cam",
                     "feet_world", "boxes")}
    return replace(gt, **cut).validate()


def _mpjpe_frames(P: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Per-frame pelvis-aligned MPJPE (t,), mm (the protocol's metric function)."""
    from moro.metrics import mpjpe

    err = mpjpe(torch.from_numpy(P.astype(np.float64)), torch.from_numpy(G.astype(np.float64)),
                np.ones(P.shape[:2], dtype=bool)).vis
    return err.mean(1).numpy()


# ------------------------------------------------------------------ the run
def _load(cfg: AccuracyConfig):
    from moro.bench.models import build_network
    from moro.inference.loading import resolve_body

    model, note = build_network("tiny", cfg.device, cfg.checkpoint)
    body = resolve_body(model)
    return model, body, note


def _sequences(root: Path, count: int | None):
    from moro.data.synth import SynthDataset

    ds = SynthDataset(root)
    names = ds.names[: count] if count else ds.names
    return [ds[n] for n in names]


def tune_smoothing(model, body, cfg: AccuracyConfig, work: Path, say: Callable[[str], None]) -> dict:
    """Grid search of both filters on the val split's per-frame outputs (lowest pooled MPJPE-all)."""
    seqs = _sequences(cfg.val, cfg.val_sequences)
    outs, gts, fps = [], [], 30.0
    for seq in seqs:
        t = min(seq.num_frames, cfg.frames or seq.num_frames)
        tokens, info = sequence_tokens(model, seq, t, work / "val")
        outs.append(decode_variant(model, body, tokens, info, work / "val", "per-frame")["joints_cam"])
        gts.append(seq.labels["joints_cam"][:t])
        fps = seq.fps
        shutil.rmtree(work / "val", ignore_errors=True)

    def score(joints: list[np.ndarray]) -> float:
        errs = np.concatenate([_mpjpe_frames(p, g) for p, g in zip(joints, gts)])
        return float(errs.mean())

    result = {"sequences": [s.name for s in seqs], "frames": int(sum(len(g) for g in gts)),
              "unsmoothed_mpjpe_mm": score(outs)}
    for kind, grid in (("gaussian", GAUSSIAN_GRID), ("one-euro", ONE_EURO_GRID)):
        best, err, tried = grid_search(lambda **p: [smooth({"j": o}, kind, p, fps)["j"] for o in outs], grid, score)
        result[kind] = {"params": best, "mpjpe_mm": err, "tried": len(tried)}
        say(f"tuned {kind} on val ({len(seqs)} sequences, {result['frames']} frames): {best} -> MPJPE {err:.1f} mm "
            f"(unsmoothed {result['unsmoothed_mpjpe_mm']:.1f} mm)")
    return result


@torch.no_grad()  # scoped: a global set_grad_enabled(False) would leak into the caller (and other tests)
def run_accuracy(cfg: AccuracyConfig, say: Callable[[str], None] = print) -> dict:
    """Decode, write predictions, score (module docstring). Returns the JSON-able results."""
    from moro.metrics.predictions import PredictionSequence, prediction_path, write_prediction
    from moro.metrics.protocols import SequenceProtocol, evaluate
    from moro.metrics.protocols.synth import synth_ground_truth

    cfg = cfg.resolved()
    model, body, note = _load(cfg)
    say(f"model: {note}" + ("  ** RANDOM WEIGHTS: the figures are meaningless **" if "random" in note else ""))
    say("scored joints: the network's own mesh joints (22-joint regressor on the decoded camera-frame mesh), no fit")
    work = cfg.out / "work"
    wanted = set(ROWS) if cfg.rows is None else set(cfg.rows) | {"moro", "per-frame"}
    unknown = wanted - set(ROWS)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; rows: {', '.join(ROWS)}")
    smoothed = [r for r in SMOOTHED if r in wanted]
    tuning = tune_smoothing(model, body, cfg, work, say) if smoothed else {}
    mean_local = None
    if MEAN_POSE in wanted:
        mean_local = mean_local_mesh(body, _sequences(cfg.val, cfg.val_sequences), cfg.frames)
    results: dict = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
                     "model": note, "joints": "network mesh joints (no parametric fit)", "tuning": tuning, "halves": {}}
    per_frame_err: dict[str, dict[str, list]] = {}
    for half in cfg.halves:
        seqs = _sequences(cfg.bench / half, cfg.sequences)
        rows = [r for r in ROWS if r in wanted and (half in cfg.sweep_halves or not r.startswith("moro K="))]
        pred_dir = cfg.out / "pred" / half
        gts = []
        for seq in seqs:
            name = f"{half}/{seq.name}"
            t = min(seq.num_frames, cfg.frames or seq.num_frames)
            gt = _gt_cut(synth_ground_truth(seq), t)
            gts.append(gt)
            tokens, info = sequence_tokens(model, seq, t, work / "seq")
            outs = {r: decode_variant(model, body, tokens, info, work / "seq", r) for r in rows if r in VARIANTS}
            shutil.rmtree(work / "seq", ignore_errors=True)
            for kind, row in zip(("gaussian", "one-euro"), SMOOTHED):
                if row not in rows:
                    continue
                outs[row] = smooth(outs["per-frame"], kind, tuning[kind]["params"], seq.fps)
            if MEAN_POSE in rows:
                outs[MEAN_POSE] = mean_pose_variant(body, mean_local, outs["moro"]["traj"])
            if AVERAGED_POSE in rows:
                outs[AVERAGED_POSE] = averaged_pose_variant(body, outs["moro"]["vertices_cam"], outs["moro"]["traj"])
            keep_v = cfg.vertices and gt.vertices_cam is not None and gt.topology.endswith(f":{body.num_vertices}")
            for row, o in outs.items():
                write_prediction(prediction_path(pred_dir / row, seq.name), PredictionSequence(
                    sequence=seq.name, frame_ids=gt.frame_ids, fps=seq.fps, joints_cam=o["joints_cam"],
                    feet_cam=o["feet_cam"], vertices_cam=o["vertices_cam"] if keep_v else None,
                    topology=gt.topology if keep_v else None, method=row, source=note,
                    scoring="network mesh joints (joints22 regressor of the decoded mesh; no parametric fit)"))
            occ_ratio = 1.0 - gt.visibility.mean(1)
            store = per_frame_err.setdefault(name, {"occ_ratio": occ_ratio.tolist()})
            for row, o in outs.items():
                store[row] = _mpjpe_frames(o["joints_cam"], gt.joints_cam).tolist()
            say(f"{name}: {t} frames, occluded joint-frames {occ_ratio.mean():.2f}; " + ", ".join(
                f"{r} {np.mean(store[r]):.1f}" for r in ("moro", "per-frame")) + " mm MPJPE")
        protocol = SequenceProtocol("synth", gts)
        res = evaluate(protocol, {r: pred_dir / r for r in rows})
        res.write(cfg.out / "eval" / half, plot=False)
        results["halves"][half] = {"sequences": len(gts), "frames": res.n_frames, "markdown": res.markdown(),
                                   "rows": {m.name: {k: m.value(k) for k in m.values} for m in res.methods}}
        say(f"bench/{half}: {len(gts)} sequences, {res.n_frames} frames")
        say(res.markdown())
    results["per_frame_errors"] = per_frame_err
    results["ratios"] = headline_ratios(results)
    shutil.rmtree(work, ignore_errors=True)
    return results


TARGETS = {"mpjpe_occ_ratio": 0.75, "jitter_ratio": 0.3, "g_accel_ratio": 0.5, "clean_mpjpe_ratio": 1.05}


def headline_ratios(results: dict) -> dict:
    """moro / per-frame ratios of the issue's targets (occ: MPJPE-occ, Jitter, G-accel; clean: MPJPE)."""
    def ratio(half: str, key: str) -> float:
        rows = results["halves"].get(half, {}).get("rows", {})
        try:
            return rows["moro"][key] / rows["per-frame"][key]
        except (KeyError, ZeroDivisionError):
            return float("nan")

    return {"mpjpe_occ_ratio": ratio("occ", "mpjpe_occ"), "jitter_ratio": ratio("occ", "jitter"),
            "g_accel_ratio": ratio("occ", "g_accel_error"), "clean_mpjpe_ratio": ratio("clean", "mpjpe")}


def summary_line(ratios: dict) -> str:
    """The last line of ``moro bench accuracy``."""
    return f"mpjpe_occ_ratio={ratios['mpjpe_occ_ratio']:.3f} jitter_ratio={ratios['jitter_ratio']:.3f}"
