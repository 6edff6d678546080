"""DecodingConfig(motion_prior=False): the decoder alone on the image features (the no-motion-prior ablation)."""

import pytest
import torch

from moro.inference.decoding import DecodingConfig, decode_clip
from moro.model.moro import ImageFeatures


def _features(model, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    p, d = model.image_encoder.config.num_patches, model.config.transformer.width
    rot = torch.tensor([1.0, 0, 0, 0, -1, 0]).expand(1, t, 6)
    return ImageFeatures(torch.randn(1, t, p, d, generator=g), rot, torch.tensor([0.0, 0.3, 3.5]).expand(1, t, 3))


def test_without_the_prior_the_result_is_the_decoders_argmax(tiny_model):
    img = _features(tiny_model)
    with torch.no_grad():
        ref = tiny_model.decoder(img.patch_features, img.coarse_traj, None)
    for k in (1, 3):
        res = decode_clip(tiny_model, img, DecodingConfig(k, motion_prior=False))
        assert torch.equal(res.ids, ref.logits.argmax(-1))
        torch.testing.assert_close(res.traj, ref.traj)


def test_the_prior_changes_the_result(tiny_model):
    img = _features(tiny_model)
    with_prior = decode_clip(tiny_model, img, DecodingConfig(2))
    without = decode_clip(tiny_model, img, DecodingConfig(2, motion_prior=False))
    assert not torch.equal(with_prior.ids, without.ids)


def test_motion_prior_must_be_a_bool():
    with pytest.raises(ValueError, match="motion_prior"):
        DecodingConfig(5, motion_prior="no")
