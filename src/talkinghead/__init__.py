"""talkinghead: few-shot adversarial learning of realistic neural talking head models (Zakharov et al. 2019)."""

from talkinghead.config import Config, ConfigError, preset

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "preset", "__version__"]
