"""``moro prepare {amass,bedlam,egobody,rich,images} --root SRC --out DST``: one-time preprocessing.

Each dataset's raw files (layouts: ``docs/datasets.md``) are read by its reader in ``moro.data``,
posed with the user's SMPL-X / SMPL files and written in the ``moro-prepared`` format
(:mod:`moro.data.prepared`) that training reads. Work is split into items (a sequence file, a
scene label file, a recording view, ...), processed by ``--workers`` processes with a progress
bar. Every item ends with an atomically written record ``DST/items/<id>.json``; a rerun skips
items that have one, so an interrupted run resumes. A bad item (missing key, unsupported frame
rate, ...) is skipped with its reason logged, recorded and counted in ``DST/manifest.json``; it
never stops the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from moro.data.formats import BodyModelSource
from moro.paths import atomic_write

log = logging.getLogger(__name__)

DATASETS = ("amass", "bedlam", "egobody", "rich", "images")
CLIP_FRAMES = 60
_STATE: dict = {}  # per worker process: the body-model source and options


def add_prepare_command(sub) -> None:
    """Register ``moro prepare`` on the top-level subparsers ``sub``."""
    p = sub.add_parser("prepare", help="one-time preprocessing of a real dataset (AMASS, BEDLAM, EgoBody, RICH, images)",
                       description="Read a dataset in its distributed layout (docs/datasets.md) and write the moro-prepared "
                                   "format that `moro train --data` reads. Resumable: rerun the same command after an interruption.")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", required=True, help="the dataset's root folder as downloaded")
    p.add_argument("--out", required=True, help="output folder (manifest.json, seqs/, items/)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--smplx", default=None, help="SMPL-X model file or folder (default: moro's search order)")
    p.add_argument("--smpl", default=None, help="SMPL model file or folder (AMASS G release, images)")
    p.add_argument("--smpl2smplx", default=None, help="images: SMPL -> SMPL-X transfer (smpl2smplx_deftrafo_setup.pkl)")
    p.add_argument("--num-betas", type=int, default=None, help="shape coefficients (default: 16 for AMASS, else 10)")
    p.add_argument("--g-model", default="smpl", choices=["smpl", "smplx"], help="AMASS SMPL+H G release: pose with SMPL or SMPL-X")
    p.add_argument("--hand-pca", action="store_true", help="egobody: expand PCA hand poses with the SMPL-X file's hand PCA")
    p.add_argument("--bedlam-layout", default="auto", choices=["auto", "labels", "raw"],
                   help="bedlam: processed label npz files or the raw render layout (be_seq.csv, camera csv, motion_seq.npz); "
                        "auto = raw when a <root>/*/be_seq.csv exists")
    p.add_argument("--bedlam-motions", default=None,
                   help="bedlam raw: the neutral_ground_truth_motioninfo folder (default: inside --root)")
    p.add_argument("--trust-pickles", action="store_true", help="rich: fully unpickle the .pt files (trusted files only)")
    p.add_argument("--limit", type=int, default=None, help="process only the first N items (a quick trial)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from moro.metrics.predictions.scoring_body import file_body_models

    nb = args.num_betas or (16 if args.dataset == "amass" else 10)
    opts = {"g_model": args.g_model, "trusted": args.trust_pickles, "smpl2smplx": args.smpl2smplx,
            "hand_pca": args.smplx if args.hand_pca else None, "bedlam_layout": args.bedlam_layout,
            "bedlam_motions": args.bedlam_motions}
    manifest = prepare(args.dataset, args.root, args.out, file_body_models(args.smplx, args.smpl, num_betas=nb), opts=opts,
                       workers=args.workers, limit=args.limit, progress=not args.no_progress)
    c = manifest["counts"]
    print(f"moro prepare {args.dataset}: {c['sequences']} sequences, {c['frames']} frames, {c['clips']} clips, "
          f"{c['skipped']} skipped -> {Path(args.out) / 'manifest.json'}")
    return 0


# --------------------------------------------------------------------------- items per dataset
def _items(dataset: str, root: Path, opts: dict) -> list[dict]:
    """The units of work of a dataset (JSON-able dicts with an ``id``)."""
    if dataset == "amass":
        from moro.data.amass import find_amass_files

        return [{"id": p.relative_to(root).as_posix(), "path": str(p)} for p in find_amass_files(root)]
    if dataset == "bedlam":
        from moro.data.bedlam_raw import is_raw_root, read_be_seq

        layout = opts.get("bedlam_layout") or "auto"
        if layout == "raw" or (layout == "auto" and is_raw_root(root)):
            items = []
            for csv_path in sorted(root.glob("*/be_seq.csv")):
                folder = csv_path.parent.name
                items += [{"id": f"{folder}/{seq}", "folder": folder, "seq": seq} for seq in sorted(read_be_seq(csv_path))]
            if not items:
                raise FileNotFoundError(f"--root {root}: no <folder>/be_seq.csv with sequences (BEDLAM raw layout, docs/datasets.md)")
            return items
        files = sorted(root.glob("*.npz")) or sorted(root.rglob("*.npz"))
        return [{"id": p.relative_to(root).as_posix(), "path": str(p)} for p in files]
    if dataset == "egobody":
        from moro.data.egobody import KINECT_IDS, read_data_info

        return [{"id": f"{r.recording}/{v}/body_{b}", "rec": r.recording, "view": v, "body": b}
                for r in read_data_info(root) for b in sorted(r.bodies) for v in KINECT_IDS
                if (root / "kinect_cam_params" / f"kinect_{v}" / "Color.json").is_file()]
    if dataset == "rich":
        from moro.data.rich import RichRoot

        return [{"id": v, "vid": v} for v in RichRoot(root, opts.get("trusted", False)).single_person_vids()]
    if dataset == "images":
        return [{"id": p.relative_to(root).as_posix(), "path": str(p)} for p in sorted(root.rglob("*.npz")) + sorted(root.rglob("*.tar"))]
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")


def _windows(frame_ids: np.ndarray, ok=None, length: int = CLIP_FRAMES) -> list[list[int]]:
    """Non-overlapping ``length``-frame windows inside runs of consecutive frames (``ok(sl)`` filters)."""
    from moro.data.egobody import consecutive_runs

    out = []
    for s0, n in consecutive_runs(frame_ids):
        for s in range(s0, s0 + n - length + 1, length):
            if ok is None or ok(slice(s, s + length)):
                out.append([s, length])
    return out


def _seq_path(out: Path, name: str) -> Path:
    return out / "seqs" / f"{name}.npz"


def _work(dataset: str, item: dict, root: Path, out: Path) -> dict:
    """Process one item; returns its record ``{"sequences": {name: info}}``."""
    from moro.data.prepared import save_prepared

    models, opts = _STATE["models"], _STATE["opts"]
    seqs: dict[str, dict] = {}

    def save(clip, split, clips, **kw):
        save_prepared(_seq_path(out, clip.sequence), clip, split=split, **kw)
        seqs[clip.sequence] = {"split": split, "frames": int(clip.num_frames), "clips": clips}

    if dataset == "amass":
        from moro.data.amass import amass_clip, amass_split, clip_starts, is_excluded, read_amass

        rel = Path(item["id"])
        split = amass_split(rel.parts[0])
        if split is None:
            return {"skipped": f"subset {rel.parts[0]} is not in the motion-prior splits"}
        if is_excluded(rel.parts[0], rel.name):
            return {"skipped": "on the protocol's exclusion list"}
        m = read_amass(item["path"], root)
        if split == "train":
            save(amass_clip(m, models, g_model=opts.get("g_model", "smpl")), split,
                 [[s, CLIP_FRAMES] for s in clip_starts(m.num_frames)])
        else:  # test clips are canonicalised one by one
            for s in clip_starts(m.num_frames):
                c = amass_clip(m, models, start=s, length=CLIP_FRAMES, canonical=True, g_model=opts.get("g_model", "smpl"))
                c.sequence = f"{m.name}@{s:05d}"
                save(c, split, [[0, CLIP_FRAMES]])
            if not seqs:
                return {"skipped": f"{m.num_frames} frames at 30 fps: shorter than one {CLIP_FRAMES}-frame clip"}
    elif dataset == "bedlam":
        from moro.data.bedlam import bedlam_clip, clip_ok, frame_keep, is_closeup, read_bedlam_labels

        if "folder" in item:  # raw render layout
            from moro.data.bedlam_raw import read_bedlam_raw

            found = read_bedlam_raw(root, item["folder"], models, sequences=[item["seq"]], motion_root=opts.get("bedlam_motions"))
        else:
            found = read_bedlam_labels(item["path"])
        for s in found:
            if len(s.frame_ids) == 0:
                continue
            c = bedlam_clip(s, models)
            keep = frame_keep(c.in_image)
            save(c, "train", _windows(c.frame_ids, lambda sl: clip_ok(c.in_image[sl])), image_files=c.image_files,
                 image_rot90=int(is_closeup(s.scene)))
            seqs[c.sequence].update(kept_frames=int(keep.sum()), moving_camera=s.moving_camera, subject_gender=s.subject_gender,
                                    **({"person": s.person} if s.person else {}))
        if not seqs:
            return {"skipped": "no body has frames with images and motion"}
    elif dataset == "egobody":
        from moro.body.params import HandPCA
        from moro.data.egobody import egobody_clip, read_color_params, read_data_info, read_splits

        rec = next(r for r in read_data_info(root) if r.recording == item["rec"])
        split = read_splits(root).get(rec.recording, "") if (root / "data_splits.csv").is_file() else ""
        pca = HandPCA.from_smplx_file(opts["hand_pca"]) if opts.get("hand_pca") else None
        c = egobody_clip(root, rec, item["view"], item["body"], models, hand_pca=pca)
        dist = read_color_params(root, item["view"])[1]
        save(c, split, _windows(c.frame_ids), image_files=c.image_files, dist_coeffs=dist)
    elif dataset == "rich":
        from moro.data.rich import RichRoot, rich_clip

        c = rich_clip(RichRoot(root, opts.get("trusted", False)), item["vid"], models)
        save(c, "test", [[0, int(c.num_frames)]], image_files=c.image_files)
    elif dataset == "images":
        return _work_images(item, root, out, models, opts, save)
    return {"sequences": seqs}


def _work_images(item: dict, root: Path, out: Path, models: BodyModelSource, opts: dict, save) -> dict:
    from PIL import Image

    from moro.data.images import SmplToSmplx, focal_or_diagonal, read_image_labels
    from moro.metrics.predictions.scoring_body import load_vertex_transfer

    path = Path(item["path"])
    if not opts.get("smpl2smplx"):
        raise ValueError("images: --smpl2smplx (smpl2smplx_deftrafo_setup.pkl) is required to convert SMPL labels to SMPL-X")
    smplx = models("smplx", "neutral")
    conv = SmplToSmplx(models("smpl", "neutral"), smplx, load_vertex_transfer(opts["smpl2smplx"]))
    if path.suffix == ".tar":
        return _work_shard(path, root, smplx, conv, save)
    lab = read_image_labels(path)
    n = len(lab["imgname"])
    transl = lab["global_t"] if "global_t" in lab else np.tile([0.0, 0.0, 10.0], (n, 1))
    x = conv(lab["pose"], lab["shape"], transl)
    sizes, Ks = [], []
    for i in range(n):
        img = root / lab["imgname"][i]
        w, h = Image.open(img).size if img.is_file() else (int(2 * lab["center"][i][0]), int(2 * lab["center"][i][1]))
        f = focal_or_diagonal(lab["focal_l"][i] if "focal_l" in lab else None, w, h)
        sizes.append((w, h))
        Ks.append(np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]))
    name = path.stem
    _save_images(name, smplx, x, np.stack(Ks), np.asarray(sizes), lab["imgname"], save,
                 extra={"betas_frames": x["betas"].astype(np.float32), "fit_error": x["fit_error"].astype(np.float32)})
    return {"sequences": {name: {"split": "train", "frames": n, "clips": [], "fit_error_mean_m": float(x["fit_error"].mean())}}}


def _save_images(name: str, smplx, x: dict, Ks: np.ndarray, sizes: np.ndarray, files, save, box_det=None, extra=None) -> None:
    """One prepared image sequence (one row per person) from converted SMPL-X parameters ``x``."""
    from moro.body.params import smpl_params_to_pose
    from moro.data.formats import pose_frames
    from moro.data.schema import Clip

    n = len(Ks)
    p = x["pose"]
    pose = smpl_params_to_pose(smplx, global_orient=p[:, :3], body_pose=p[:, 3:66], jaw_pose=p[:, 66:69], leye_pose=p[:, 69:72],
                               reye_pose=p[:, 72:75], left_hand_pose=p[:, 75:120], right_hand_pose=p[:, 120:165],
                               betas=x["betas"], transl=x["transl"], sequence=name)
    fields = pose_frames(smplx, pose, T_p2w=np.eye(4), T_w2c=np.eye(4), K=Ks, image_size=sizes, fps=0.0)
    fields["contacts"] = None  # unrelated images: no velocities
    clip = Clip(dataset="images", sequence=name, fps=0.0, image_size=tuple(int(v) for v in sizes[0]), K=Ks[0], T_w2c=np.eye(4),
                frame_ids=np.arange(n, dtype=np.int64), image_files=np.asarray(files), box_det=box_det, **fields)
    extra = dict(extra or {}, image_size_frames=np.asarray(sizes, dtype=np.int64))
    save(clip, "train", [], image_files=files, K_frames=Ks, T_w2c_frames=np.broadcast_to(np.eye(4), (n, 4, 4)), extra=extra)


def _work_shard(path: Path, root: Path, smplx, conv, save) -> dict:
    """A 4D-Humans shard -> one prepared sequence ``<shard path without .tar>``, one row per person with a body pose."""
    from moro.data.images import focal_or_diagonal, shard_people, weak_perspective_transl

    d = shard_people(path, root)
    n = len(d["pose"])
    stats = {"samples": d["samples"], "people": d["people"], "no_body_pose": d["no_pose"]}
    if n == 0:
        return {"skipped": f"no person with a body pose among {d['people']} people", "shard": stats}
    Ks = np.stack([np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
                   for w, h in d["image_size"] for f in [focal_or_diagonal(None, w, h)]])
    x0 = conv(d["pose"], d["betas"])  # at zero translation: the camera translation is not in the shards
    t = weak_perspective_transl(x0["joints22"], d["center"], d["scale"], Ks)
    x = dict(x0, transl=x0["transl"] + t)  # a rigid shift moves the SMPL-X fit by the same t
    name = path.relative_to(root).with_suffix("").as_posix()
    box = np.concatenate([d["center"], d["scale"][:, None]], axis=1).astype(np.float32)
    extra = {"betas_frames": x["betas"].astype(np.float32), "fit_error": x["fit_error"].astype(np.float32),
             "trans_estimated": np.ones(n, np.int8), "has_betas": d["has_betas"].astype(np.int8),
             "keypoints_2d": d["keypoints_2d"], "keypoints_3d": d["keypoints_3d"], "sample_key": d["key"],
             "person_index": d["person"].astype(np.int64), "smpl_pose": d["pose"].astype(np.float32),
             "smpl_betas": d["betas"].astype(np.float32)}
    _save_images(name, smplx, x, Ks, d["image_size"], d["image_files"], save, box_det=box, extra=extra)
    return {"sequences": {name: {"split": "train", "frames": n, "clips": [], "fit_error_mean_m": float(x["fit_error"].mean()),
                                 "trans_estimated": True}}, "shard": stats}


# --------------------------------------------------------------------------- engine
def _init(models: BodyModelSource, opts: dict) -> None:
    torch.set_num_threads(1)
    _STATE.update(models=models, opts=opts)


def _run_one(dataset: str, item: dict, root: str, out: str) -> dict:
    from moro.data.formats import DatasetFormatError

    try:
        rec = _work(dataset, item, Path(root), Path(out))
    except (DatasetFormatError, ValueError, KeyError, IndexError, OSError) as e:
        rec = {"skipped": f"{type(e).__name__}: {e}"}
    rec["id"] = item["id"]
    with atomic_write(_record_path(Path(out), item["id"])) as tmp:
        tmp.write_text(json.dumps(rec))
    return rec


def _record_path(out: Path, item_id: str) -> Path:
    return out / "items" / (hashlib.sha1(item_id.encode()).hexdigest()[:16] + ".json")


def prepare(dataset: str, root: str | os.PathLike, out: str | os.PathLike, models: BodyModelSource, *, opts: dict | None = None,
            workers: int = 1, limit: int | None = None, progress: bool = True) -> dict:
    """Prepare ``dataset`` from ``root`` into ``out`` (module docstring); returns the manifest.

    Args:
        models: body-model source (``file_body_models`` in the CLI; tests pass small models).
        opts: dataset options (``g_model``, ``trusted``, ``smpl2smplx``, ``hand_pca``).
        workers: processes (1 = in this process).
        limit: only the first ``limit`` items.
    """
    from tqdm import tqdm

    from moro.data.prepared import FORMAT, FORMAT_VERSION, MANIFEST

    root, out, opts = Path(root), Path(out), dict(opts or {})
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} not found; pass the folder of the downloaded {dataset} data (docs/datasets.md)")
    items = _items(dataset, root, opts)[:limit]
    records, todo = {}, []
    for it in items:
        path = _record_path(out, it["id"])
        if path.is_file():
            records[it["id"]] = json.loads(path.read_text())
        else:
            todo.append(it)
    if records:
        log.info("%s: %d of %d items already done (resuming)", out, len(records), len(items))
    bar = tqdm(total=len(items), initial=len(records), desc=f"prepare {dataset}", unit="item", disable=not progress)
    if workers <= 1:
        _init(models, opts)
        results = (_run_one(dataset, it, str(root), str(out)) for it in todo)
        for rec in results:
            records[rec["id"]] = rec
            _log_skip(rec)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(models, opts)) as ex:
            for rec in ex.map(_run_one, [dataset] * len(todo), todo, [str(root)] * len(todo), [str(out)] * len(todo)):
                records[rec["id"]] = rec
                _log_skip(rec)
                bar.update()
    bar.close()
    seqs = {n: info for r in records.values() for n, info in r.get("sequences", {}).items()}
    skipped = {i: r["skipped"] for i, r in records.items() if "skipped" in r}
    counts = {"items": len(items), "sequences": len(seqs), "frames": sum(s["frames"] for s in seqs.values()),
              "clips": sum(len(s["clips"]) for s in seqs.values()), "skipped": len(skipped),
              "per_split": {sp: {"sequences": sum(1 for s in seqs.values() if s["split"] == sp),
                                 "clips": sum(len(s["clips"]) for s in seqs.values() if s["split"] == sp)}
                            for sp in sorted({s["split"] for s in seqs.values()})}}
    shards = {i: r["shard"] for i, r in records.items() if "shard" in r}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "dataset": dataset, "source_root": str(root.absolute()),
                "options": {k: v for k, v in opts.items() if v is not None}, "counts": counts, "skipped": skipped,
                "sequences": seqs, "shards": shards}
    if dataset == "amass":
        manifest["trajectory_stats"] = _trajectory_stats(out, seqs)
    with atomic_write(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def _log_skip(rec: dict) -> None:
    if "skipped" in rec:
        log.warning("skipped %s: %s", rec["id"], rec["skipped"])


def _trajectory_stats(out: Path, seqs: dict) -> dict | None:
    """Canonical-trajectory mean / std (9,) over the train clips (padding frame dropped) -> trajectory_stats.json."""
    from moro.geometry.rotations import rotvec_to_rotmat
    from moro.geometry.trajectory import TrajectoryStats, trajectory_to_canonical

    canos = []
    for name, info in seqs.items():
        if info["split"] != "train" or not info["clips"]:
            continue
        with np.load(_seq_path(out, name)) as z:
            R = rotvec_to_rotmat(torch.from_numpy(z["root_orient_world"].astype(np.float64)))
            t = torch.from_numpy(z["root_trans_world"].astype(np.float64))
        for s, n in info["clips"]:
            canos.append(trajectory_to_canonical(R[s:s + n], t[s:s + n])[:-1])
    if not canos:
        log.warning("no AMASS train clips: trajectory statistics not computed")
        return None
    stats = TrajectoryStats.from_canonical(torch.cat(canos))
    d = {"mean": stats.mean.tolist(), "std": stats.std.tolist(), "frames": int(sum(len(c) for c in canos))}
    with atomic_write(out / "trajectory_stats.json") as tmp:
        tmp.write_text(json.dumps(d, indent=1))
    return d
