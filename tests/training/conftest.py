"""Training tests: generated hierarchies go to a temporary cache; one torch thread (tiny problems)."""

from pathlib import Path

import pytest
import torch

TOKENIZER = str(Path(__file__).resolve().parents[2] / "models" / "tokenizer_tiny.ckpt")


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


@pytest.fixture(scope="session")
def split(tmp_path_factory):
    """A 2 x 40-frame synthetic training split (rendered)."""
    from moro.synth.splits import plan_split
    from moro.synth.writer import write_split

    root = tmp_path_factory.mktemp("synth") / "train"
    write_split(root, plan_split("train", sequences=2, frames=40, seed=5, width=256, height=144))
    return root


@pytest.fixture(scope="session")
def cache(split, anny5, tmp_path_factory):
    """Its training cache (crops, token ids) for the tiny tokenizer."""
    import os

    from moro.training.pipeline import prepare_data

    os.environ["MORO_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    return prepare_data(split, TOKENIZER, anny5)
