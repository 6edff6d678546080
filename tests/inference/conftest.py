"""Inference tests: one torch thread, an isolated moro cache (with the built Anny body linked in), and
session-wide fixtures: the Anny body, a random tiny MoRo checkpoint, a rendered 2-second video."""

import json
import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated files (hierarchies, inference caches) go to a temporary cache root; the already
    built Anny model file is linked in so it is not rebuilt (seconds)."""
    from moro.body.anny_model import anny_cache_path

    built = anny_cache_path("notoes_collapse5pc")  # in the user's cache (built there if missing)
    if not built.exists():
        from moro.body import load_anny

        load_anny("notoes_collapse5pc")
    root = tmp_path_factory.mktemp("moro-cache")
    before = os.environ.get("MORO_CACHE_DIR")
    os.environ["MORO_CACHE_DIR"] = str(root)
    (root / "body").mkdir(parents=True, exist_ok=True)
    (root / "body" / built.name).symlink_to(built)
    yield root
    if before is None:
        os.environ.pop("MORO_CACHE_DIR", None)
    else:
        os.environ["MORO_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny problems gain nothing from threads; on shared cores extra threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def body(_isolated_cache):
    from moro.body import load_anny

    return load_anny("notoes_collapse5pc")


@pytest.fixture(scope="session")
def tiny_model(body):
    from infer_fixtures import anny_tiny_moro

    return anny_tiny_moro(body)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "moro-tiny-random.pt"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="session")
def person_clip(body):
    """A 2-second (60 frames, 30 fps) 320 x 240 render of Anny walking, with its camera and boxes."""
    from infer_fixtures import render_person

    return render_person(body, num_frames=60)


@pytest.fixture(scope="session")
def person_video(person_clip, tmp_path_factory) -> Path:
    from infer_fixtures import write_video

    return write_video(tmp_path_factory.mktemp("video") / "person.mp4", person_clip["frames"])


@pytest.fixture(scope="session")
def person_boxes(person_clip, tmp_path_factory) -> Path:
    """Boxes file (JSON, HMR boxes) on every 4th frame: the rest is interpolated."""
    path = tmp_path_factory.mktemp("boxes") / "boxes.json"
    boxes = [{"frame": i, "cxcys": b.tolist()} for i, b in enumerate(person_clip["boxes"]) if i % 4 == 0]
    path.write_text(json.dumps({"boxes": boxes}))
    return path
