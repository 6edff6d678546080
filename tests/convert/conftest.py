"""Converter tests: one torch thread (tiny problems on shared cores), generated files in temporary folders,
and one scaled synthetic release of the authors' files shared by the module's tests."""

import pytest
import torch
from official_release import Release, scaled_target, write_release


@pytest.fixture(autouse=True)
def _isolated_cache_one_thread(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "moro-cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    return write_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def target():
    return scaled_target()


@pytest.fixture(scope="module")
def converted(release, target):
    """(report, output path) of converting the scaled release."""
    from moro.convert import convert_official

    out = release.folder / "moro_scaled.ckpt"
    report = convert_official(release.ckpt, release.conn_dir, release.stats_path, out, target=target)
    return report, out
