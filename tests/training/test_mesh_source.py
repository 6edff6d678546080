"""Local meshes from the motion generator: root-centred, a pure function of (seed, step), held-out apart."""

import pytest
import torch

from moro.training.mesh_source import HELD_OUT_SEED, LocalMeshSource, motion_seed


@pytest.fixture(scope="module")
def sources(anny5):
    kw = dict(frames_per_motion=12, window=2, refresh=2)
    return LocalMeshSource(anny5, 0, **kw), LocalMeshSource(anny5, 0, **kw), LocalMeshSource(anny5, HELD_OUT_SEED, **kw)


def test_batches_are_local_meshes_and_repeat_exactly(anny5, sources):
    a, b, held = sources
    x = a.batch(3, 4)
    assert x.vertices.shape == (4, 615, 3) and x.vertices.dtype == torch.float32
    assert x.body_pose.shape == (4, 35, 3, 3) and x.betas.shape == (4, 136)
    root = anny5(x.body_pose, x.betas).joints[:, 0]
    torch.testing.assert_close(root, torch.zeros_like(root))  # body pose only, root joint at the origin
    assert torch.equal(b.batch(3, 4).vertices, x.vertices)  # another instance, another history: same batch
    assert not torch.equal(a.batch(4, 4).vertices, x.vertices)
    assert not torch.allclose(held.batch(3, 4).vertices, x.vertices)
    assert (x.vertices.norm(dim=-1).amax(-1) < 2.0).all()  # metres: the body lies within 2 m of its pelvis


def test_held_out_motions_never_meet_training_motions():
    train = {motion_seed(0, j) for j in range(10_000)}
    assert not train & {motion_seed(HELD_OUT_SEED, j) for j in range(10_000)}


def test_bad_arguments(anny5):
    with pytest.raises(ValueError, match="window"):
        LocalMeshSource(anny5, window=0)
    with pytest.raises(ValueError, match="batch >= 1"):
        LocalMeshSource(anny5).batch(0, 0)
