import pytest
import torch


@pytest.fixture(scope="session")
def anny5():
    """The tiny Anny topology (615 vertices), built once into the user's moro cache."""
    from moro.body import load_anny

    return load_anny("notoes_collapse5pc")


@pytest.fixture(scope="session")
def anny_default():
    """Anny's default topology (13718 vertices), the reference for the COCO regressor."""
    from moro.body import load_anny

    return load_anny("anny")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
