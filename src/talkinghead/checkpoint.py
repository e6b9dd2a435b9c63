"""Checkpoints: one safetensors file with the weights, the resolved config and the code version.

The header metadata (strings only, the safetensors format) holds:
``format`` (= ``talkinghead-checkpoint/1``), ``config`` (the resolved `Config` as JSON), ``code_version``,
``kind`` (e.g. ``training``, ``export``, ``avatar``) and ``metadata`` (caller's extra JSON, always with
``variant``: ``FT`` or ``FF``, the meta-learning variant from ``config.train.variant``, so every file says
whether its model may be fine-tuned).
Loading never unpickles anything. Writes are atomic (temporary file in the same folder, then rename), so
a crash mid-write leaves the previous checkpoint intact.

Typical use::

    save_checkpoint(path, {**prefixed("generator.", model_state(generator)), ...}, config, kind="training")
    checkpoint = load_checkpoint(path, expected_kind="training", expected_model=config.model)
    load_model_state(generator, checkpoint.tensors, prefix="generator.", source=path)
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from talkinghead import __version__
from talkinghead.config import Config, ConfigError, ModelConfig

logger = logging.getLogger(__name__)

FORMAT = "talkinghead-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, truncated, of another kind/architecture, or keys do not match."""


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns."""

    tensors: dict[str, torch.Tensor]
    config: Config
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    path: Path | None = None


def packaged_weights(file: str) -> Path:
    """Where this installation keeps ``file``, a weights file that ships in the package (talkinghead/weights/)."""
    return Path(str(importlib.resources.files("talkinghead") / "weights" / file))


def require_packaged_weights(file: str, what: str, otherwise: str) -> Path:
    """`packaged_weights` of ``file``; a FileNotFoundError naming ``what`` and saying ``otherwise`` (the way round
    it) when this installation lacks it."""
    path = packaged_weights(file)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} is missing from this installation; reinstall talkinghead, or "
                                f"{otherwise}")
    return path


def model_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as plain contiguous CPU tensors (parameters and buffers), ready to save."""
    return {name: tensor.detach().to("cpu").contiguous() for name, tensor in module.state_dict().items()}


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{prefix + name: tensor}``: several modules in one checkpoint (``generator.``, ``embedder.``...)."""
    return {prefix + name: tensor for name, tensor in tensors.items()}


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], config: Config, kind: str,
                    metadata: dict | None = None) -> Path:
    """Write ``tensors`` + config + code version + kind + ``metadata`` (JSON-able) to ONE safetensors file,
    atomically. Returns the path."""
    path = Path(path)
    if not kind:
        raise CheckpointError("save_checkpoint: kind must be a non-empty string (e.g. 'training', 'export')")
    variant = config.train.variant.upper()
    metadata = dict(metadata or {})
    if str(metadata.setdefault("variant", variant)).upper() != variant:
        raise CheckpointError(f"save_checkpoint({path}): metadata variant {metadata['variant']!r} contradicts the "
                              f"config's train.variant {variant!r}")
    header = {
        "format": FORMAT,
        "config": config.to_json(),
        "code_version": __version__,
        "kind": kind,
        "metadata": json.dumps(metadata, sort_keys=True),
    }
    state = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"save_checkpoint({path}): entry {name!r} is a {type(tensor).__name__}, "
                                  "not a tensor; put non-tensor values in metadata")
        state[name] = tensor.detach().to("cpu").contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(state, temporary, metadata=header)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("saved %s checkpoint %s (%d tensors)", kind, path, len(state))
    return path


def load_checkpoint(path: str | os.PathLike, expected_kind: str | None = None,
                    expected_model: ModelConfig | None = None) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`. Never unpickles.

    ``expected_kind``: raise unless the checkpoint's kind matches. ``expected_model``: raise unless the
    checkpoint's model architecture (every `ModelConfig` field) matches, naming the fields that differ.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as reader:
            header = reader.metadata() or {}
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a safetensors file: {error}); "
                              "use an intact copy or an earlier checkpoint") from error
    if header.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a talkinghead checkpoint (format {header.get('format')!r}, "
                              f"expected {FORMAT!r})")
    try:
        config = Config.from_json(header["config"])
        metadata = json.loads(header.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError, ConfigError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path}: its config/metadata header cannot be read ({error})") from error
    kind = header.get("kind", "")
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(f"checkpoint {path} is a {kind!r} checkpoint, expected {expected_kind!r}")
    if expected_model is not None:
        check_same_model(config.model, expected_model, source=f"checkpoint {path} (preset {config.preset})")
    return Checkpoint(tensors=tensors, config=config, kind=kind, metadata=metadata,
                      code_version=header.get("code_version", ""), path=path)


def check_same_model(found: ModelConfig, expected: ModelConfig, source: str = "checkpoint",
                     ignore: tuple[str, ...] = ()) -> None:
    """Raise `CheckpointError` naming every model field whose value differs (but those in ``ignore``)."""
    differences = [f"model.{name}: {value!r} in {source}, {getattr(expected, name)!r} expected"
                   for name, value in vars(found).items() if getattr(expected, name) != value and name not in ignore]
    if differences:
        raise CheckpointError(f"{source} was made for another architecture: " + "; ".join(differences)
                              + ". Load it with its own preset, or use a checkpoint of this one")


def load_model_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str = "",
                     source: str | os.PathLike = "checkpoint") -> None:
    """Copy ``tensors[prefix + name]`` into ``module``'s parameters and buffers (strict).

    Raises `CheckpointError` naming missing keys, unexpected keys under ``prefix`` and shape mismatches.
    """
    expected = module.state_dict()
    found = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"{prefix}{name}: {tuple(found[name].shape)} in file, {tuple(tensor.shape)} in model"
              for name, tensor in expected.items() if name in found and found[name].shape != tensor.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {[prefix + n for n in missing[:8]]}" + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append(f"unexpected keys {[prefix + n for n in unexpected[:8]]}"
                        + (" ..." if len(unexpected) > 8 else ""))
    if shapes:
        problems.append("shape mismatches " + "; ".join(shapes[:8]))
    if problems:
        raise CheckpointError(f"{source} does not match {type(module).__name__} (prefix {prefix!r}): "
                              + ", ".join(problems))
    module.load_state_dict(found, strict=True)
