"""MoRo's configuration: one dataclass of sub-configs, presets ``paper`` and ``tiny``, saved in checkpoints.

``paper`` is the authors' network (design.md "Networks"; official checkpoint layout): width 1024,
8 heads, MLP x4, motion encoder depth 4, decoder depth 2, 87 tokens of 9 dims, 512 codes,
temporal window +-60 frames, 60-frame clips at 30 fps. ``tiny`` is ours, for CPUs and tests:
width 64, 4 heads, depths 2 / 1, temporal window +-16, trajectory loss x5, with the token layout read from
the tiny tokenizer config.

Errors name the field to change (``transformer.num_heads``, ``tokens.num_tokens``, ...).
The image encoder and the tokenizer are built elsewhere and injected into
:class:`~moro.model.moro.MoRo`, which checks that they fit this config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from moro.model.gumbel import GumbelConfig
from moro.model.losses import LossConfig
from moro.model.masking import MaskingConfig
from moro.model.smoother import SmootherConfig

__all__ = ["TokenConfig", "TransformerConfig", "MoRoConfig", "PRESETS"]


@dataclass
class TokenConfig:
    """Token layout; must equal the tokenizer's (checked when the model is assembled)."""

    num_tokens: int = 87  # n pose tokens per frame (tokenizer's last pooling level)
    num_codes: int = 512  # k codes = logit classes; [MASK] is id k
    code_dim: int = 9  # dc dimensions of a code vector

    def __post_init__(self) -> None:
        for name in ("num_tokens", "num_codes", "code_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"tokens.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class TransformerConfig:
    """Motion encoder and decoder (both DSTFormers of one width, so features pass between them)."""

    width: int = 1024  # d; must equal the image encoder's output width
    num_heads: int = 8  # attention heads; width / num_heads must be even (RoPE pairs)
    mlp_ratio: int = 4  # MLP hidden width over d
    motion_depth: int = 4  # fused (st, ts) pairs in the motion encoder
    decoder_depth: int = 2  # fused pairs in the fusion decoder
    window: int = 60  # temporal attention sees |i - j| <= window frames (memory O(t x window))
    rope_base: float = 10000.0  # RoPE frequency base
    max_positions: int = 4096  # initial RoPE table length (grows on demand)
    ln_eps: float = 1e-5  # LayerNorm epsilon of the blocks

    def __post_init__(self) -> None:
        for name in ("width", "num_heads", "mlp_ratio", "motion_depth", "decoder_depth", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"transformer.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.num_heads:
            raise ValueError(
                f"transformer.width {self.width} is not divisible by transformer.num_heads {self.num_heads}; "
                "change transformer.num_heads"
            )
        if (self.width // self.num_heads) % 2:
            raise ValueError(
                f"head dimension {self.width // self.num_heads} is odd, but RoPE rotates pairs; "
                "change transformer.num_heads (or transformer.width)"
            )
        if self.window < 0:
            raise ValueError(f"transformer.window must be >= 0 frames, got {self.window}")

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads


@dataclass
class MoRoConfig:
    """Everything needed to rebuild a MoRo network (the injected parts carry their own configs)."""

    name: str = "custom"  # preset name, checked by from_checkpoint(preset=...)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    smoother: SmootherConfig = field(default_factory=SmootherConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    gumbel: GumbelConfig = field(default_factory=GumbelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    fps: float = 30.0  # clip frame rate; velocities (contact, skating) are per second
    clip_frames: int = 60  # training clip length t; windows longer than a clip see nothing new

    def __post_init__(self) -> None:
        subs = {"tokens": TokenConfig, "transformer": TransformerConfig, "smoother": SmootherConfig,
                "masking": MaskingConfig, "gumbel": GumbelConfig, "loss": LossConfig}
        for name, cls in subs.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                known = {f.name for f in fields(cls)}
                unknown = sorted(set(value) - known)
                if unknown:
                    raise ValueError(f"unknown field(s) {unknown} in config section {name!r}; known: {sorted(known)}")
                setattr(self, name, cls(**value))
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.clip_frames < 1:
            raise ValueError(f"clip_frames must be >= 1, got {self.clip_frames}")
        if self.transformer.window > self.clip_frames:
            raise ValueError(
                f"transformer.window ({self.transformer.window}) is larger than clip_frames ({self.clip_frames}): "
                "no training clip can show the model such distances; lower transformer.window or raise clip_frames"
            )

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls) -> "MoRoConfig":
        """The authors' network (design.md; official checkpoint layout)."""
        return cls(name="paper")

    @classmethod
    def tiny(cls, tokenizer_config=None, num_vertices: int = 615) -> "MoRoConfig":
        """A CPU-sized network whose token layout comes from the tiny tokenizer.

        Args:
            tokenizer_config: a :class:`~moro.tokenizer.MeshVQVAEConfig` (default: its ``tiny()``).
            num_vertices: vertices of the tokenized mesh (default 615, Anny ``notoes_collapse5pc``);
                the token count is the tokenizer hierarchy's last level size for that mesh.
        """
        from moro.tokenizer import MeshVQVAEConfig

        tok = tokenizer_config or MeshVQVAEConfig.tiny()
        tokens = TokenConfig(
            num_tokens=tok.hierarchy.level_sizes(num_vertices)[-1],
            num_codes=tok.codebook_size,
            code_dim=tok.latent_dim,
        )
        # width 64 keeps the whole pipeline real-time on a 2-core CPU (benchmarks/RESULTS.md); the
        # trajectory term is weighted 5x the paper's: with a from-scratch CNN the camera-frame root
        # orientation is otherwise learnt last (models/README.md)
        transformer = TransformerConfig(width=64, num_heads=4, motion_depth=2, decoder_depth=1, window=16)
        return cls(name="tiny", tokens=tokens, transformer=transformer, clip_frames=32, loss=LossConfig(traj=5.0))

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MoRoConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown MoRoConfig field(s) {unknown}; this checkpoint was written by a newer moro?")
        return cls(**d)


PRESETS = {"paper": MoRoConfig.paper, "tiny": MoRoConfig.tiny}
