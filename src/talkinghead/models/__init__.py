"""The paper's three networks (§3.1, §3.4), our warp-guided generator (issue 15), their layers. Imports torch only."""

from torch import nn

from talkinghead.config import ModelConfig
from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.generator import Generator
from talkinghead.models.warp_generator import WarpGenerator, WarpSources

__all__ = ["Discriminator", "Embedder", "Generator", "WarpGenerator", "WarpSources", "build_generator"]


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator family ``cfg.generator`` names: the paper's `Generator` or our `WarpGenerator`.
    Both have ``project``, ``num_adain_params``, ``projection`` and ``needs_sources``."""
    if cfg.generator == "paper":
        return Generator(cfg)
    if cfg.generator == "warp":
        return WarpGenerator(cfg)
    raise ValueError(f"model.generator={cfg.generator!r}: choose 'paper' or 'warp'")
