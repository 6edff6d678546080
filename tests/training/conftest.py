"""Training tests: generated hierarchies go to a temporary cache; one torch thread (tiny problems)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "moro-cache"))


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def anny5():
    """The tiny Anny topology (615 vertices); the body-model cache is the user's (built once)."""
    from moro.body import load_anny

    return load_anny("notoes_collapse5pc")
