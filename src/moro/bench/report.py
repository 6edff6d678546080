"""``RESULTS.md`` and its PNG plots, rendered from the JSON files the benchmark commands write.

Layout of a results folder ``DIR`` (``benchmarks/`` for the published figures, ``runs/bench-quick/``
for ``--quick`` runs)::

    DIR/RESULTS.md                 tables of every JSON present, machine, versions, commands, dates
    DIR/results/speed.json         `moro bench speed` (one per device: speed-cuda.json)
    DIR/results/accuracy.json      `moro bench accuracy`
    DIR/results/*.png              error vs occlusion ratio, error around an occlusion event, speed vs length

Plots need matplotlib (the ``dev`` extra); without it the page says so and keeps the tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from moro.bench.measure import describe_machine

__all__ = ["write_json", "render_results", "occlusion_bins", "occlusion_events"]

OCC_BINS = (0.0, 0.05, 0.25, 0.5, 0.75, 1.0001)


def write_json(folder: Path, name: str, data: dict) -> Path:
    path = Path(folder) / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=float))
    return path


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def occlusion_bins(per_frame: dict, rows: list[str]) -> dict[str, list[float]]:
    """Mean per-frame MPJPE (mm) per bin of the occluded-joint fraction (:data:`OCC_BINS`), per row."""
    occ = np.concatenate([np.asarray(s["occ_ratio"]) for s in per_frame.values()])
    out = {"bins": list(OCC_BINS), "frames": []}
    idx = np.digitize(occ, OCC_BINS[1:-1])
    out["frames"] = [int((idx == b).sum()) for b in range(len(OCC_BINS) - 1)]
    for r in rows:
        if not all(r in s for s in per_frame.values()):
            continue
        err = np.concatenate([np.asarray(s[r]) for s in per_frame.values()])
        out[r] = [float(err[idx == b].mean()) if (idx == b).any() else float("nan") for b in range(len(OCC_BINS) - 1)]
    return out


def occlusion_events(per_frame: dict, rows: list[str], before: int = 20, after: int = 40,
                     low: float = 0.1, high: float = 0.4, calm: int = 10) -> dict:
    """Per-frame MPJPE (mm) aligned on occlusion onsets, averaged over events, per row.

    An onset is a frame ``t`` where the occluded-joint fraction rises through ``high`` (``occ[t - 1] < high <=
    occ[t]``) and the ``calm`` frames from ``t - before`` on were all below ``low`` (the occluder may move in
    gradually over the frames between). The window is ``[t - before, t + after)``; events too close to the
    ends are skipped, and the next onset is looked for after the window.
    """
    curves: dict[str, list[np.ndarray]] = {r: [] for r in rows}
    n = 0
    for s in per_frame.values():
        occ = np.asarray(s["occ_ratio"])
        t = max(before, 1)
        while t + after <= len(occ):
            if occ[t - 1] < high <= occ[t] and (occ[t - before : t - before + calm] < low).all():
                n += 1
                for r in rows:
                    if r in s:
                        curves[r].append(np.asarray(s[r][t - before : t + after]))
                t += after
            else:
                t += 1
    return {"events": n, "offsets": list(range(-before, after)),
            **{r: np.mean(c, 0).tolist() for r, c in curves.items() if c}}


def _plots(folder: Path, speed: dict | None, acc: dict | None) -> tuple[list[str], str | None]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install -e '.[dev]')"
    made = []
    res = folder / "results"
    rows = ["moro", "per-frame", "per-frame+gaussian", "per-frame+one-euro", "moro no carry", "moro no prior"]
    if acc and acc.get("per_frame_errors"):
        b = occlusion_bins(acc["per_frame_errors"], rows)
        fig, ax = plt.subplots(figsize=(6, 4))
        centres = [(lo + min(hi, 1.0)) / 2 for lo, hi in zip(OCC_BINS[:-1], OCC_BINS[1:])]
        for r in rows:
            if r in b:
                ax.plot(centres, b[r], marker="o", label=r)
        ax.set_xlabel("occluded fraction of the 22 joints (per frame)")
        ax.set_ylabel("MPJPE (mm)")
        ax.set_title("Error vs occlusion (bench/occ + bench/clean)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(res / "error_vs_occlusion.png", dpi=120)
        plt.close(fig)
        made.append("error_vs_occlusion.png")
        ev = occlusion_events({k: v for k, v in acc["per_frame_errors"].items() if k.startswith("occ/")}, rows)
        if ev["events"]:
            fig, ax = plt.subplots(figsize=(6, 4))
            for r in rows:
                if r in ev:
                    ax.plot(ev["offsets"], ev[r], label=r)
            ax.axvline(0, color="k", lw=0.8, ls="--")
            ax.set_xlabel("frames from occlusion onset")
            ax.set_ylabel("MPJPE (mm)")
            ax.set_title(f"Error around an occlusion event (mean of {ev['events']} events)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(res / "error_around_occlusion.png", dpi=120)
            plt.close(fig)
            made.append("error_around_occlusion.png")
    for dev, sp in (speed or {}).items():
        sc = sorted((r for r in sp["results"] if r["kind"] == "scaling"), key=lambda r: r["frames"])
        if len(sc) < 2:
            continue
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
        x = [r["frames"] for r in sc]
        ax[0].loglog(x, [r["seconds"] for r in sc], marker="o")
        ax[0].set_xlabel("frames")
        ax[0].set_ylabel("seconds")
        ax[0].set_title("time vs length")
        key = "peak_cuda_mb" if "peak_cuda_mb" in sc[0] else "peak_rss_mb"
        ax[1].semilogx(x, [r[key] for r in sc], marker="o")
        ax[1].set_ylim(0, 1.2 * max(r[key] for r in sc))
        ax[1].set_xlabel("frames")
        ax[1].set_ylabel(f"{key} (MB)")
        ax[1].set_title("peak memory vs length")
        fig.tight_layout()
        name = f"speed_vs_length_{dev}.png"
        fig.savefig(res / name, dpi=120)
        plt.close(fig)
        made.append(name)
    return made, None


def _speed_section(dev: str, sp: dict) -> list[str]:
    L = [f"### Speed and memory ({dev})", "", f"Machine: {describe_machine(sp['machine'])}", "",
         f"Command: `{sp['command']}`", ""]
    if sp.get("notes"):
        L += [f"- {n}" for n in sp["notes"]] + [""]
    R = sp["results"]
    probes = [r for r in R if r["kind"] == "matmul"]
    if probes:
        mm = max(probes, key=lambda r: r["flops_per_s"])
        each = ", ".join(f"{r['flops_per_s'] / 1e9:.1f}" for r in probes)
        L += [f"Measured matmul peak: {mm['flops_per_s'] / 1e9:.1f} GFLOP/s ({mm['dtype']}, {mm['size']}^3; the higher of "
              f"the probes at the start and end of the run: {each} GFLOP/s).", ""]
        if any(r.get("peak_fraction", 0) > 1 for r in R):
            L += ["**A decoding figure exceeds the measured peak: the probes ran while the machine was busy; "
                  "rerun on an idle machine.**", ""]
    mem = lambda r: _f(r.get("peak_cuda_mb", r["peak_rss_mb"]), 4)  # noqa: E731
    memh = "peak CUDA MB" if dev.startswith("cuda") else "peak RSS MB"
    L += ["| part | network | frames | fps | " + memh + " | note |", "|---|---|---:|---:|---:|---|"]
    for r in R:
        net = r["network"]["preset"] if isinstance(r.get("network"), dict) else r.get("network", "")
        if r["kind"] == "tokenizer":
            L.append(f"| tokenizer decode / encode | {net} | {r['frames']} | {_f(r['decode_fps'])} / {_f(r['encode_fps'])} "
                     f"| {mem(r)} | {r['vertices']} vertices, {r['tokens']} tokens |")
        elif r["kind"] == "decode":
            note = f"{r['flops'] / r['frames'] / 1e9:.3g} GFLOP/frame, {r['achieved_flops_per_s'] / 1e9:.3g} GFLOP/s = " \
                   f"{100 * r.get('peak_fraction', float('nan')):.1f} % of peak"
            if r["timed_passes"] < r["iterations"]:
                note += f"; {r['timed_passes']} of {r['iterations']} passes timed, scaled"
            L.append(f"| masked decoding, K={r['iterations']} | {net} | {r['frames']} | {_f(r['fps'])} | {mem(r)} | {note} |")
        elif r["kind"] == "pipeline":
            st = ", ".join(f"{k} {v:.3g}" for k, v in r["stages_ms_per_frame"].items())
            note = f"ms/frame: {st}" + ("" if r["fit"] else "; no fit (SMPL-X not shipped)")
            if r["timed_passes"] < r["iterations"]:
                note += f"; {r['timed_passes']} of {r['iterations']} passes timed, scaled"
            part = "pipeline " + ("with backbone" if r["backbone"] else "without backbone")
            L.append(f"| {part} | {net} | {r['frames']} | {_f(r['fps'])} | {mem(r)} | {note} |")
    d = sp["derived"]
    sc = [r for r in R if r["kind"] == "scaling"]
    if sc:
        s = d["scaling"]
        L += ["", f"Scaling ({s['network']} network, {s['iterations']} pass(es) per window, 500-frame windows, "
                  "stores on disk):", "", "| frames | seconds | fps | " + memh + " |", "|---:|---:|---:|---:|"]
        L += [f"| {r['frames']} | {_f(r['seconds'])} | {_f(r['fps'])} | {mem(r)} |" for r in sorted(sc, key=lambda r: r["frames"])]
        f = s["time_fit"]
        L += ["", f"Time fit: {f['intercept_s']:.3g} s + {1000 * f['slope_s_per_frame']:.3g} ms x frames, r2 = {f['r2']:.4f}, "
                  f"largest relative residual {100 * f['max_rel_residual']:.1f} %; "
                  f"peak memory ratio 18000 vs 600 frames: {_f(d.get('peak_mem_ratio_18000_vs_600'))}."]
    L += ["", f"Headline: `{sp['summary']}`", ""]
    return L


def _accuracy_section(acc: dict) -> list[str]:
    L = ["### Accuracy on the synthetic benchmark", "", f"Machine: {describe_machine(acc['machine'])}", "",
         f"Command: `{acc['command']}`", "", f"Model: {acc['model']}. Scored joints: {acc['joints']}.", ""]
    t = acc["tuning"]
    if t:  # empty when the run had no smoothing rows (--rows)
        L += [f"Smoothing tuned on val ({len(t['sequences'])} sequences, {t['frames']} frames, lowest MPJPE-all): "
              f"Gaussian {t['gaussian']['params']}, one-euro {t['one-euro']['params']}.", ""]
    from moro.bench.accuracy import ROW_NOTES, TARGETS

    for row, note in ROW_NOTES.items():
        if any(row in h.get("rows", {}) for h in acc["halves"].values()):
            L += [f"Row `{row}`: {note}", ""]
    for half, h in acc["halves"].items():
        L += [f"#### bench/{half} ({h['sequences']} sequences, {h['frames']} frames)", "", h["markdown"].strip(), ""]
    r = acc["ratios"]
    L += ["Targets (moro / per-frame, same run):", "", "| ratio | value | target |", "|---|---:|---:|"]
    L += [f"| {k} | {v:.3f} | <= {TARGETS[k]}{'' if v <= TARGETS[k] else ' (not met)'} |" for k, v in r.items()]
    L += ["", f"Headline: `{acc['summary']}`", ""]
    return L


def render_results(folder: str | Path) -> Path:
    """Write ``folder/RESULTS.md`` (and plots) from every JSON under ``folder/results``."""
    folder = Path(folder)
    res = folder / "results"
    speed = {p.stem.replace("speed-", "").replace("speed", "cpu"): json.loads(p.read_text())
             for p in sorted(res.glob("speed*.json"))}
    acc = json.loads((res / "accuracy.json").read_text()) if (res / "accuracy.json").is_file() else None
    made, why = _plots(folder, speed, acc)
    L = ["# moro benchmark results", "",
         "Generated by `moro bench speed` / `moro bench accuracy` (src/moro/bench); do not edit by hand - rerun the "
         "commands below. Every figure was measured on the machine named beside it.", ""]
    if acc:
        L += _accuracy_section(acc)
    for dev, sp in speed.items():
        L += _speed_section(dev, sp)
    if made:
        L += ["### Plots", ""] + [f"![{m}](results/{m})" for m in made] + [""]
    if why:
        L += [f"_{why}_", ""]
    path = folder / "RESULTS.md"
    path.write_text("\n".join(L))
    return path
