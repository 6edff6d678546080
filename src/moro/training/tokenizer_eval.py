"""Score a tokenizer on held-out local meshes (``moro eval tokenizer``).

Held-out meshes come from :class:`~moro.training.mesh_source.LocalMeshSource` with
``HELD_OUT_SEED``: other motions and other body shapes than any training run with a seed < 1000.
Per mesh, the tokenizer encodes to codes and decodes them (eval mode: the codebook is not
touched). Reported (metres inside, mm only here, in names that say so):

- ``pve_mm``       mean vertex error, each mesh shifted by its own 22-joint pelvis (:func:`moro.metrics.pve`)
- ``pa_pve_mm``    mean vertex error after a per-mesh similarity Procrustes on the vertices
- ``mpjpe_mm``     22-joint MPJPE of the reconstruction (``body.joints22`` on both meshes; :func:`moro.metrics.mpjpe`)
- ``perplexity``   exp(entropy) of the code histogram over all held-out tokens (max = codebook size)
- ``dead_codes``   codes no held-out token uses
- ``meshes_per_s`` encode + decode throughput (no grad, float32, this process's torch threads; data generation excluded)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from moro.body.model import BodyModel
from moro.metrics import mpjpe, procrustes_align, pve
from moro.tokenizer.vqvae import MeshVQVAE
from moro.training.mesh_source import HELD_OUT_SEED, LocalMeshSource

__all__ = ["TokenizerEvalResult", "evaluate_tokenizer"]

M_TO_MM = 1000.0


@dataclass
class TokenizerEvalResult:
    num_meshes: int
    pve_mm: float
    pa_pve_mm: float
    mpjpe_mm: float
    perplexity: float
    dead_codes: int
    codebook_size: int
    num_tokens: int
    meshes_per_s: float
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate_tokenizer(
    model: MeshVQVAE,
    body: BodyModel,
    *,
    num_meshes: int = 512,
    batch: int = 64,
    seed: int = HELD_OUT_SEED,
    source: LocalMeshSource | None = None,
) -> TokenizerEvalResult:
    """Reconstruction accuracy, codebook use and speed of ``model`` on held-out meshes of ``body``.

    Args:
        model: the tokenizer (put in eval mode here).
        body: the body model of its mesh (joint regressor for the pelvis and MPJPE).
        num_meshes: held-out meshes; batch: meshes per encode/decode call.
        seed: held-out source seed (default ``HELD_OUT_SEED``); ignored when ``source`` is given.
    """
    if body.num_vertices != model.num_vertices:
        raise ValueError(
            f"the tokenizer expects {model.num_vertices}-vertex meshes but the body model has {body.num_vertices}; "
            "evaluate with the body model the tokenizer was trained on"
        )
    if num_meshes < 1 or batch < 1:
        raise ValueError(f"need num_meshes >= 1 and batch >= 1, got {num_meshes}, {batch}")
    model.eval()
    source = source or LocalMeshSource(body, seed=seed)
    k = model.config.codebook_size
    hist = torch.zeros(k, dtype=torch.float64)
    pve_sum = pa_sum = mpjpe_sum = 0.0
    seconds, done, step = 0.0, 0, 0
    model.decode_codes(model.encode(source.batch(0, 1).vertices)[0])  # warm-up (allocations), untimed
    while done < num_meshes:
        gt = source.batch(step, min(batch, num_meshes - done)).vertices  # (b, v, 3) metres
        t0 = time.perf_counter()
        codes, _ = model.encode(gt)  # (b, n)
        recon = model.decode_codes(codes)  # (b, v, 3)
        seconds += time.perf_counter() - t0
        hist += torch.bincount(codes.reshape(-1), minlength=k).double()
        j_rec, j_gt = body.joints22(recon), body.joints22(gt)  # (b, 22, 3)
        pve_sum += pve(recon, gt, pred_joints=j_rec, gt_joints=j_gt).sum().item()
        pa = procrustes_align(recon, gt)
        pa_sum += (torch.linalg.vector_norm(pa - gt, dim=-1).mean(dim=-1) * M_TO_MM).sum().item()
        mpjpe_sum += mpjpe(j_rec, j_gt).sum().item()
        done += gt.shape[0]
        step += 1
    p = hist / hist.sum()
    perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum()).item()
    return TokenizerEvalResult(
        num_meshes=done,
        pve_mm=pve_sum / done,
        pa_pve_mm=pa_sum / done,
        mpjpe_mm=mpjpe_sum / done,
        perplexity=perplexity,
        dead_codes=int((hist == 0).sum()),
        codebook_size=k,
        num_tokens=model.num_tokens,
        meshes_per_s=done / max(seconds, 1e-9),
        threads=torch.get_num_threads(),
    )
