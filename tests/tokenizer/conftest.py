"""Tokenizer tests: keep every generated hierarchy out of the user's cache."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "moro-cache"))


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # These problems are far too small for intra-op parallelism, and OpenMP threads that wait
    # on each other make them several times slower on shared CPU cores.
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
