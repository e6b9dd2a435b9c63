"""Training state: save a run to its files and resume it exactly; the small inference export beside it.

(Not to be confused with `talkinghead.checkpoint`, the safetensors file format every saved file uses, or
with recomputing activations in backward, ``train.activation_checkpointing``: `loop.RecomputedFeatures`.)

Run-dir layout::

    RUN/checkpoints/training-00001000.safetensors   E, G, D, both Adams + SparseAdam, EMA, RNG states
    RUN/export.safetensors                          EMA E, G (with P) + D's V, w0, b (fine-tuning needs them)

Optimizer state dicts are stored as tensors (``optimizer.<name>.state.<param>.<key>``) plus JSON (param
groups and non-tensor state values) in the checkpoint's metadata; RNG states of torch (CPU and CUDA),
numpy and Python likewise, one set per rank. Writes are atomic (`talkinghead.checkpoint.save_checkpoint`);
only the newest ``keep`` training checkpoints are kept. Every file records the variant (FT or FF) it was
meta-learned as (`talkinghead.checkpoint.save_checkpoint` adds it to the metadata).
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.checkpoint import load_checkpoint, prefixed, save_checkpoint
from talkinghead.config import Config
from talkinghead.training.distributed import World, barrier
from talkinghead.training.learner import Learner

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
EXPORT_NAME = "export.safetensors"
_PATTERN = re.compile(r"^training-(\d{8})\.safetensors$")


# --- optimizers -----------------------------------------------------------------------------------------

def optimizer_to_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON) holding ``optimizer.state_dict()``; inverse of `optimizer_from_tensors`."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            name = f"{prefix}.state.{index}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                           prefix: str) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith(prefix + ".state."):
            index, key = name[len(prefix) + len(".state."):].split(".", 1)
            state.setdefault(int(index), {})[key] = tensor
    for name, value in meta["scalars"].items():
        index, key = name[len(prefix) + len(".state."):].split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --- random number generators ----------------------------------------------------------------------------

def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's torch (CPU, CUDA), numpy and Python RNG states as (tensors, JSON)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{device}"] = state
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {"numpy": [kind, int(position), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{d}"] for d in range(torch.cuda.device_count()) if f"cuda.{d}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), position, has_gauss, cached))
    version, gauss_next = meta["python"]
    random.setstate((version, tuple(int(x) for x in tensors["python"].tolist()), gauss_next))


# --- files -------------------------------------------------------------------------------------------------

def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"training-{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Training checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _PATTERN.match(p.name))


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        log.info("removed old checkpoint %s (keeping the last %d)", old, keep)


def resolve_resume(resume: str, run_dir: Path) -> Path | None:
    """``auto``: the newest checkpoint in RUN (None when there is none); ``never``: None, but an error
    when RUN already holds checkpoints (they would be overwritten); anything else: that file."""
    existing = list_checkpoints(run_dir)
    if resume == "auto":
        return existing[-1] if existing else None
    if resume == "never":
        if existing:
            raise FileExistsError(f"run dir {run_dir} already holds {len(existing)} checkpoint(s) (newest "
                                  f"{existing[-1].name}); use --resume auto to continue it, or another --run-dir")
        return None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"--resume {resume}: no such checkpoint file; use auto, never or a path")
    return path


# --- saving and resuming a run ----------------------------------------------------------------------------

def gather_rng(world: World) -> list[tuple[dict[str, torch.Tensor], dict]]:
    local = rng_state()
    if not world.distributed:
        return [local]
    import torch.distributed as dist

    gathered: list[Any] = [None] * world.world_size
    dist.all_gather_object(gathered, local)  # in-memory transfer between our own processes only
    return gathered


def save_training_state(learner: Learner, run_dir: Path, metadata: dict[str, Any]) -> Path | None:
    """Rank 0 writes RUN/checkpoints/training-<step>.safetensors (atomic) and the export; all ranks call it."""
    rngs = gather_rng(learner.world)
    path = None
    if learner.world.is_main:
        tensors, meta = learner.state()
        meta["rng"] = []
        for rank, (rng_tensors, rng_meta) in enumerate(rngs):
            tensors.update(prefixed(f"rng.{rank}.", rng_tensors))
            meta["rng"].append(rng_meta)
        meta.update(metadata, world_size=learner.world.world_size)
        path = save_checkpoint(checkpoint_path(run_dir, learner.step), tensors, learner.config,
                               kind="training", metadata=meta)
        prune_checkpoints(run_dir, learner.config.train.keep_checkpoints)
        save_checkpoint(Path(run_dir) / EXPORT_NAME, learner.export_tensors(), learner.config,
                        kind="export", metadata={"step": learner.step, "images": learner.images,
                                                 "variant": learner.config.train.variant, **metadata})
    barrier(learner.world)
    return path


def load_training_state(learner: Learner, path: Path, dataset_hash: str | None) -> None:
    checkpoint = load_checkpoint(path, expected_kind="training", expected_model=learner.config.model)
    meta = checkpoint.metadata
    if dataset_hash and meta.get("dataset_hash") and meta["dataset_hash"] != dataset_hash:
        raise ValueError(f"checkpoint {path} was trained on another dataset (index hash {meta['dataset_hash'][:12]}, "
                         f"this one {dataset_hash[:12]}): W's rows would mean other videos; use a new --run-dir")
    changed = config_differences(checkpoint.config, learner.config)
    if changed:
        log.warning("resuming %s with changed settings (the new values apply): %s", path, "; ".join(changed))
    learner.load_state(checkpoint.tensors, meta, source=str(path))
    rank = learner.world.rank
    if meta.get("world_size") == learner.world.world_size:
        rng_tensors = {name[len(f"rng.{rank}."):]: t for name, t in checkpoint.tensors.items()
                       if name.startswith(f"rng.{rank}.")}
        set_rng_state(rng_tensors, meta["rng"][rank])
    else:
        log.warning("checkpoint %s was written by %s processes, this run has %d: RNG states re-seeded, data order "
                    "continues from image %d", path, meta.get("world_size"), learner.world.world_size, learner.images)
    log.info("resumed from %s at step %d (%d images)", path, learner.step, learner.images)


def config_differences(saved: Config, current: Config) -> list[str]:
    saved_values, current_values = saved.to_dict(), current.to_dict()
    return [f"{section}.{name}: {value!r} -> {current_values[section][name]!r}"
            for section, fields in saved_values.items() if isinstance(fields, dict)
            for name, value in fields.items() if current_values[section][name] != value]


def code_version() -> str:
    """The package version, plus the git commit when the package runs from a checkout."""
    import subprocess

    from talkinghead import __version__

    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__
