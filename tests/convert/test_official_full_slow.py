"""Slow: a release with all 792 names at the printed full shapes, converted by the CLI onto the paper
preset, loaded (~968 M parameters, ~4 GB) and run forward on two frames.

To keep the synthetic file small, every large tensor is a seeded view into one shared random pool
(``torch.save`` stores a shared storage once): ~64 MB on disk instead of 3.7 GB. The converter
and the model do not care where the values come from.
"""

import contextlib
import io

import numpy as np
import pytest
import torch
from official_release import BODY_INT64, Dims, release_shapes, write_traj_stats

import official_reference as ref
from moro.cli import main
from moro.model import MoRo

pytestmark = pytest.mark.slow


def pooled_release(seed: int = 0) -> dict[str, torch.Tensor]:
    shapes = release_shapes(Dims.paper())
    g = torch.Generator().manual_seed(seed)
    pool = torch.randn(max(int(np.prod(s)) for s in shapes.values()) + 1024, generator=g) * 0.02
    state = {}
    for i, (name, shape) in enumerate(shapes.items()):
        n = int(np.prod(shape))
        short = name.rsplit(".", 1)[-1]
        if name.startswith("bm_neutral.") and short in {k.rsplit(".", 1)[-1] for k in BODY_INT64}:
            state[name] = torch.randint(0, 50, shape, generator=g)
        elif "norm" in name and short == "weight":
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif n < 100_000:
            state[name] = 0.05 * torch.randn(shape, generator=g)
        else:  # a view: no copy, the file stores the pool once
            start = (i * 7919) % (pool.numel() - n)
            state[name] = pool[start:start + n].view(shape)
    cb = state["vqvae.vq_vae._embedding.weight"]
    state["mask_transformer.token_emb.weight"] = torch.cat((cb, torch.zeros(1, 9)))
    return state


def test_official_full_shape_release_converts_and_runs(tmp_path):
    from moro.model.summary import official_shape_hierarchy
    from moro.tokenizer import save_official_hierarchy

    state = pooled_release()
    torch.save({"state_dict": state, "epoch": 0, "optimizer_states": []}, tmp_path / "last.ckpt")
    save_official_hierarchy(official_shape_hierarchy(), tmp_path / "conn")
    write_traj_stats(tmp_path / "amass_cum_traj.pkl")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["convert", "official", "--ckpt", str(tmp_path / "last.ckpt"), "--connection-matrices",
                   str(tmp_path / "conn"), "--traj-stats", str(tmp_path / "amass_cum_traj.pkl"),
                   "--out", str(tmp_path / "moro_paper.ckpt")])
    assert rc == 0 and "tensors=780" in out.getvalue()
    model = MoRo.from_checkpoint(tmp_path / "moro_paper.ckpt", preset="paper").eval()
    for official, ours in (("backbone.model.blocks.31.mlp.fc2.weight", "backbone.blocks.31.mlp.fc2.weight"),
                           ("mask_transformer.dst_former.d_pos_enc", "decoder.d_pos_enc"),
                           ("vqvae.fully_conv_ae.w_weights13", "tokenizer.layers.13.w_weights")):
        assert torch.equal(model.state_dict()[ours], state[official])
    g = torch.Generator().manual_seed(0)
    images = torch.randn(1, 2, 3, 256, 192, generator=g)
    with torch.no_grad():
        image = model.encode_image(torch.tensor([0.05, -0.02, 0.6]).expand(1, 2, 3), images=images, chunk_size=1)
        ids = torch.full((1, 2, 87), model.mask_id)
        result = model(ids, model.canonical_input(image.coarse_traj), image)
        codes = result.logits.argmax(-1)
        mesh = model.mesh_from_ids(codes)
    assert result.decoder.features.shape == (1, 2, 281, 1024) and mesh.shape == (1, 2, 9383, 3)
    assert torch.isfinite(mesh).all() and torch.isfinite(result.decoder.traj).all()
    conn = {k: v for k, v in official_shape_hierarchy().to_arrays().items()}
    with torch.no_grad():
        torch.testing.assert_close(mesh[:, :1], ref.mesh_from_ids(state, conn, codes[:, :1]), rtol=1e-4, atol=1e-5)
