"""The paper's three networks (§3.1, §3.4) and their layers. Imports torch only."""

from talkinghead.models.discriminator import Discriminator
from talkinghead.models.embedder import Embedder
from talkinghead.models.generator import Generator

__all__ = ["Discriminator", "Embedder", "Generator"]
