"""Shared fixtures for the geometry tests."""

import pytest
import torch


@pytest.fixture
def gen() -> torch.Generator:
    """A freshly seeded CPU generator, so each test is reproducible on its own."""
    return torch.Generator().manual_seed(1234)
