"""The training stages of MoRo as named recipes (supplement A; design.md "Training"), per preset.

================  =========  ===================  ==============================================================
stage             parent     data                 what trains / masking / losses
================  =========  ===================  ==============================================================
tokenizer         -          local meshes         the Mesh-VQ-VAE (``moro train tokenizer``, :mod:`.tokenizer`)
pose_pretrain     tokenizer  single frames        motion encoder on t = 1, trajectory zero; random masking;
                                                  CE, vertices, contact
motion_pretrain   pose_      clips               motion encoder (+ smoother); random / joint / frame masking;
                  pretrain                        progressive trajectory noise (clean < 30 %, 1 deg / 10 mm < 60 %,
                                                  then 2 deg / 30 mm); CE, vertices, canonical trajectory,
                                                  joints / velocity / skating of the ``cano`` roll-out, contact
image_pretrain    motion_    single crops         backbone + image encoder + decoder, all tokens masked; flips,
                  pretrain                        rotation, photometric; crop modes p = 0.1; CE, vertices,
                                                  trajectory rotation, 2D reprojection; the last
                                                  ``translation_finetune`` fraction adds the translation and
                                                  global 3D joint terms (the paper's short EgoBody + BEDLAM finetune)
video_train       image_     clips of crops       motion encoder + decoder + smoother, backbone and image encoder
                  pretrain                        frozen (in eval mode: batch norms keep their image-stage
                                                  statistics); inference / random masking 0.5 / 0.5; crop mode fixed per
                                                  clip (p = 0.2, 20-100 % of the frames); every term of the
                                                  ``cano`` and ``refined`` trajectories (``coarse`` comes from
                                                  the frozen image encoder: its terms would only push the pose
                                                  to absorb its per-frame jitter)
================  =========  ===================  ==============================================================

Frozen parts always run in eval mode (:func:`moro.training.steps.freeze_modes`).

Optimiser (all stages): AdamW (weight decay 1e-4), linear warm-up from 0.01 x over
``warmup`` steps, cosine to 0.1 x, gradient clipping at 1.0, Gumbel temperature cosine-annealed
1.0 -> 0.01 over the stage (:mod:`moro.model.gumbel`). ``paper`` holds the paper's values;
``tiny`` scales steps, batches and clip lengths to a 2-core CPU (the stages of ``moro train all
--preset tiny`` take about 50 minutes there; models/README.md) — every schedule shape is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = ["STAGES", "StageRecipe", "recipe", "RECIPES", "TrajectoryNoise"]

STAGES = ("pose_pretrain", "motion_pretrain", "image_pretrain", "video_train")
PARENTS = {"pose_pretrain": "tokenizer", "motion_pretrain": "pose_pretrain", "image_pretrain": "motion_pretrain",
           "video_train": "image_pretrain"}


@dataclass(frozen=True)
class TrajectoryNoise:
    """Progressive Gaussian noise on the motion encoder's input trajectory (supplement A.2)."""

    clean_until: float = 0.3  # fraction of the stage with clean trajectories
    mid_until: float = 0.6  # then (rot_deg[0], trans_mm[0]) until this fraction
    rot_deg: tuple[float, float] = (1.0, 2.0)  # per-frame orientation noise std, degrees
    trans_mm: tuple[float, float] = (10.0, 30.0)  # per-frame translation noise std, millimetres

    def at(self, frac: float) -> tuple[float, float]:
        """``(rotation std (rad), translation std (m))`` at a fraction of the stage in [0, 1]."""
        if frac < self.clean_until:
            return 0.0, 0.0
        i = 0 if frac < self.mid_until else 1
        return self.rot_deg[i] * 3.141592653589793 / 180.0, self.trans_mm[i] / 1000.0


@dataclass(frozen=True)
class StageRecipe:
    """Everything that defines one stage; stored in its checkpoints (a resume must not change it)."""

    stage: str
    parent: str  # stage whose checkpoint initialises this one ("tokenizer": a tokenizer file)
    data: str  # "frames" (motion, t = 1), "clips" (motion), "images" (rendered crops), "video" (rendered clips)
    steps: int
    batch: int  # clips (or frames) per optimiser step, per process
    clip_frames: int  # t frames per sample (1 for single-frame stages)
    lr: float
    weight_decay: float = 1e-4
    backbone_lr: float | None = None  # the backbone's own lr when it trains (None: lr); e.g. a pose-pretrained one
    motion_lr: float | None = None  # the motion encoder's own lr when it trains (None: lr; 0: frozen), e.g. to keep
    # a motion prior through the video stage
    warmup: int = 2000  # warm-up steps (capped at `steps`)
    grad_clip: float = 1.0
    masking: tuple[tuple[str, float], ...] = (("random", 1.0),)  # (mode, probability) per clip
    trainable: tuple[str, ...] = ("motion_encoder",)  # MoRo parts that get gradients
    trajectory: str = "zero"  # motion-encoder input: "zero" | "gt_noisy" (motion) | "image" (video)
    noise: TrajectoryNoise | None = None  # progressive noise on the input trajectory (motion_pretrain)
    crop_mode_prob: float = 0.0  # probability of a partial-body crop (image: per frame; video: per clip)
    crop_frames: tuple[float, float] = (0.2, 1.0)  # video: fraction of a cropped clip's frames that are cropped
    occluder_prob: float = 0.0  # video: probability per clip of a painted occluder moving over part of the clip
    occluder_size: tuple[float, float] = (0.3, 0.6)  # its side as a fraction of the crop side (uniform range)
    flip_prob: float = 0.0  # horizontal flip (images)
    rotation_prob: float = 0.0  # in-plane rotation (images)
    rotation_deg: float = 30.0  # its range, +- degrees
    photometric: bool = False  # brightness / contrast / saturation / noise jitter
    translation_finetune: float = 0.0  # last fraction of the stage that adds translation + global joint terms
    losses: tuple[str, ...] = ()  # active term prefixes (moro.model.losses); () = every term the batch allows
    log_every: int = 10
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; stages: {', '.join(STAGES)}")
        if min(self.steps, self.batch, self.clip_frames) < 1:
            raise ValueError(f"{self.stage}: steps, batch and clip_frames must be >= 1")
        total = sum(p for _, p in self.masking)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"{self.stage}: masking probabilities must sum to 1, got {self.masking}")
        if self.motion_lr is not None and self.motion_lr < 0:
            raise ValueError(f"{self.stage}: motion_lr must be >= 0 (0 freezes the motion encoder), got {self.motion_lr}")

    @property
    def trained_parts(self) -> tuple[str, ...]:
        """The parts that get gradients: ``trainable`` less the motion encoder where ``motion_lr`` is 0."""
        if self.motion_lr == 0:
            return tuple(t for t in self.trainable if t != "motion_encoder")
        return self.trainable

    def to_dict(self) -> dict:
        d = asdict(self)
        d["masking"] = [list(m) for m in self.masking]
        if d["motion_lr"] is None:  # unset: the dict of runs made before the option, so they still resume
            del d["motion_lr"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StageRecipe":
        d = dict(d)
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["masking"] = tuple((str(m), float(p)) for m, p in d.get("masking", ()))
        if d.get("noise") is not None:
            n = d["noise"]
            d["noise"] = TrajectoryNoise(n["clean_until"], n["mid_until"], tuple(n["rot_deg"]), tuple(n["trans_mm"]))
        for k in ("trainable", "losses", "crop_frames", "occluder_size"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


_IMAGE_AUG = dict(flip_prob=0.5, rotation_prob=0.3, photometric=True)
_PAPER = {
    "pose_pretrain": StageRecipe("pose_pretrain", "tokenizer", "frames", 40_000, 128, 1, 1e-4),
    "motion_pretrain": StageRecipe(
        "motion_pretrain", "pose_pretrain", "clips", 60_000, 4, 60, 1e-4,
        masking=(("random", 1 / 3), ("joint", 1 / 3), ("frame", 1 / 3)),
        trainable=("motion_encoder", "smoother"), trajectory="gt_noisy", noise=TrajectoryNoise()),
    "image_pretrain": StageRecipe(
        "image_pretrain", "motion_pretrain", "images", 40_000, 64, 1, 1e-5, masking=(("full", 1.0),),
        trainable=("backbone", "image_encoder", "decoder"), crop_mode_prob=0.1, translation_finetune=0.1,
        **_IMAGE_AUG),
    "video_train": StageRecipe(
        "video_train", "image_pretrain", "video", 60_000, 2, 60, 1e-5,
        masking=(("inference", 0.5), ("random", 0.5)), trainable=("motion_encoder", "decoder", "smoother"),
        trajectory="image", crop_mode_prob=0.2),
}
# tiny: the same recipes with CPU-sized steps, batches and clips (see models/README.md for the budget).
_TINY_OVERRIDES = {
    "pose_pretrain": dict(steps=400, batch=32, lr=1e-3, warmup=40, checkpoint_every=100),
    "motion_pretrain": dict(steps=250, batch=4, clip_frames=32, lr=5e-4, warmup=25, checkpoint_every=50),
    "image_pretrain": dict(steps=600, batch=32, lr=5e-4, warmup=60, checkpoint_every=100),
    # occluder_prob stays 0: painted occluders on half the clips changed no ratio of the bench (models/README.md)
    "video_train": dict(steps=600, batch=2, clip_frames=32, lr=5e-4, warmup=25, checkpoint_every=50),
}
RECIPES: dict[str, dict[str, StageRecipe]] = {
    "paper": _PAPER,
    "tiny": {s: replace(r, **_TINY_OVERRIDES[s]) for s, r in _PAPER.items()},
}


def recipe(stage: str, preset: str, **overrides) -> StageRecipe:
    """The recipe of ``stage`` under ``preset`` with ``overrides`` (None values ignored)."""
    if preset not in RECIPES:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(RECIPES)}")
    if stage not in RECIPES[preset]:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)} (and 'tokenizer', 'all')")
    return replace(RECIPES[preset][stage], **{k: v for k, v in overrides.items() if v is not None})
