"""The tiny Mesh-VQ-VAE learns: 120 steps on deformed spheres cut the reconstruction error."""

import torch
from tok_meshes import icosphere

from moro.tokenizer.vqvae import MeshVQVAE, MeshVQVAEConfig


def deformed_spheres(template: torch.Tensor, b: int, generator: torch.Generator) -> torch.Tensor:
    """(b, v, 3): the template scaled by 0.6..1.4, stretched per axis by 0.7..1.3, sheared along z."""
    a = torch.rand(b, 5, generator=generator) - 0.5
    x, y, z = template.unbind(-1)
    stretched = torch.stack(
        [x * (1 + 0.6 * a[:, :1]), y * (1 + 0.6 * a[:, 1:2]), z * (1 + 0.6 * a[:, 2:3]) + 0.6 * a[:, 3:4] * x * y], -1
    )
    return (1 + 0.8 * a[:, 4:5, None]) * stretched


def test_tiny_vqvae_reconstruction_error_drops():
    v, f = icosphere(2)  # 162 vertices -> 65 -> 24 -> 10 tokens
    template = torch.from_numpy(v)
    model = MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), f, len(v), cache=False)
    gen = torch.Generator().manual_seed(0)
    held_out = deformed_spheres(template, 32, gen)
    template_error = (held_out - template).norm(dim=-1).mean().item()  # predicting the undeformed sphere

    def held_out_error() -> float:
        with torch.no_grad():
            return model.eval()(held_out).vertex_error.item()

    initial = held_out_error()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(120):
        out = model(deformed_spheres(template, 8, gen))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    final = held_out_error()
    assert final < 0.25 * initial, (initial, final)
    assert final < 0.85 * template_error, (template_error, final)  # it encodes the deformation, not just the mean
    assert out.perplexity > 10  # many codes in use, no codebook collapse
