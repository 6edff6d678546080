"""One entry point to every body model: ``load_body_model("anny" | "smplx" | "smpl", ...)``."""

from __future__ import annotations

from pathlib import Path

from moro.body.model import BodyModel

BODY_MODELS = ("anny", "smplx", "smpl")


def load_body_model(
    model: str = "anny",
    topology: str | None = None,
    path: str | Path | None = None,
    gender: str = "neutral",
    num_betas: int = 10,
) -> BodyModel:
    """Load a body model.

    Args:
        model: ``"anny"`` (embedded, offline), ``"smplx"`` or ``"smpl"`` (user-supplied files).
        topology: Anny topology (default ``"notoes_collapse5pc"``); for SMPL-X,
            ``"body"`` gives the eyeball-free body mesh of the paper (9383 vertices).
        path: SMPL-X / SMPL model file or directory (see ``moro.body.smpl_files`` for the
            search order when omitted).
        gender: SMPL-family gender (``"neutral"``, ``"female"``, ``"male"``).
        num_betas: SMPL-family shape coefficients to keep.
    Returns:
        a :class:`BodyModel` (float32, CPU).
    """
    if model == "anny":
        from moro.body.anny_model import load_anny

        if path is not None:
            raise ValueError("Anny is embedded: it takes no path (use topology=...)")
        return load_anny(topology or "notoes_collapse5pc")
    if model in ("smplx", "smpl"):
        from moro.body import smpl_files

        if model == "smplx":
            if topology not in (None, "full", "body"):
                raise ValueError(f"SMPL-X topology must be 'full' or 'body', got {topology!r}")
            return smpl_files.load_smplx(path, gender=gender, num_betas=num_betas, body_only=topology == "body")
        if topology not in (None, "full"):
            raise ValueError(f"SMPL has one topology ('full'), got {topology!r}")
        return smpl_files.load_smpl(path, gender=gender, num_betas=num_betas)
    raise ValueError(f"unknown body model {model!r}; choose one of {BODY_MODELS}")
