"""Warm starts: begin meta-learning from networks that were already meta-learned, instead of from random weights.

A warm start is a training checkpoint without what belongs to its own run: E, G (with P), D's V, w0 and b, and
the EMA of E and G, but not W (one row per *training video* of that run), the optimizer moments or the RNG states.
A run started from one (``train.init_from``) gets fresh optimizers and its own W, whose rows start from each
video's first embedding as in any FT run (`MetaLearner._start_video_rows`).

The people a warm start was meta-learned on stay "seen": their identity record (names, synthetic identity seeds)
is merged into the new run's record, so evaluation refuses them as test identities
(`talkinghead.evaluate.check_identity_overlap`).

Make one from a run with ``python -m talkinghead.training.warm_start RUN/checkpoints/training-N.safetensors OUT``,
or from an export (the shipped model) the same way.
The demo ships one (`packaged_demo_warm_start`), made by ``scripts/make-demo-warm-start.sh``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from talkinghead.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_same_model,
    load_checkpoint,
    load_model_state,
    require_packaged_weights,
    save_checkpoint,
)
from talkinghead.config import WEIGHT_FREE_MODEL_FIELDS
from talkinghead.landmarks.synthesis_prior import PRIOR_PARTS
from talkinghead.perceptual_weights import sha256_of

log = logging.getLogger(__name__)

KIND = "warm-start"
MODULES = ("embedder", "generator", "discriminator", "ema.embedder", "ema.generator")
"""The networks a warm start carries (prefixes of its tensor names)."""
RUN_ONLY = "discriminator.video_embeddings."
"""W: one row per training video of the run that made it, meaningless in another run."""
DEMO_WARM_START = "demo-tiny64-warm-start.safetensors"


def packaged_demo_warm_start() -> Path:
    """The warm start that ships with the package for `talkinghead demo` (tiny-64, synthetic people)."""
    return require_packaged_weights(DEMO_WARM_START, "the demo's warm start", "run the demo with --from-scratch")


def make_warm_start(training_checkpoint: str | Path, out: str | Path) -> Path:
    """Write the warm start of a training checkpoint (``RUN/checkpoints/training-N.safetensors``) or of an export
    (``RUN/export.safetensors``, the shipped model) to ``out``.

    An export holds only the EMA of E and G (and D, which has no EMA): the warm start's online E and G start at
    those EMA weights, and so does its EMA. Continuing from the shipped model is thus possible, with the same
    record of who it saw."""
    checkpoint = load_checkpoint(training_checkpoint)
    if checkpoint.kind == "training":
        carried = tuple(f"{module}." for module in MODULES)
        tensors = {name: tensor for name, tensor in checkpoint.tensors.items()
                   if name.startswith(carried) and not name.startswith(RUN_ONLY)}
    elif checkpoint.kind == "export":
        tensors = {name: tensor for name, tensor in checkpoint.tensors.items() if not name.startswith(RUN_ONLY)}
        tensors.update({f"ema.{name}": tensor.clone() for name, tensor in checkpoint.tensors.items()
                        if name.startswith(("embedder.", "generator."))})
    else:
        raise CheckpointError(f"{training_checkpoint} is a {checkpoint.kind!r} checkpoint; a warm start is made "
                              "from a 'training' checkpoint or an 'export'")
    meta = checkpoint.metadata
    metadata = {"step": meta.get("step"), "images": meta.get("images"), "dataset": meta.get("dataset", {}),
                "dataset_hash": meta.get("dataset_hash"), "feature_network": meta.get("feature_network"),
                "made_from": Path(training_checkpoint).name, "trained_by": checkpoint.code_version}
    return save_checkpoint(out, tensors, checkpoint.config, kind=KIND, metadata=metadata)


def read_warm_start(path: str | Path, expected_model=None) -> tuple[Checkpoint, dict[str, Any]]:
    """The warm start at ``path`` and what a run started from it records about it: file name, SHA-256, steps,
    images and who it saw."""
    checkpoint = load_checkpoint(path)
    if expected_model is not None:  # the same networks; how they are run (and bounded) may differ
        check_same_model(checkpoint.config.model, expected_model, source=f"warm start {path}",
                         ignore=(*WEIGHT_FREE_MODEL_FIELDS, "prior_input"))
        if expected_model.prior_input and not checkpoint.config.model.prior_input:
            checkpoint.tensors = widen_for_prior_input(checkpoint.tensors)
        elif checkpoint.config.model.prior_input and not expected_model.prior_input:
            raise CheckpointError(f"warm start {path} was trained with model.prior_input=true (its synthesis branch "
                                  "reads the prior's parts); its run needs model.prior_input=true too")
    if checkpoint.kind not in (KIND, "training"):
        raise CheckpointError(f"train.init_from={path} is a {checkpoint.kind!r} checkpoint; a warm start is a "
                              f"{KIND!r} file or a 'training' checkpoint (RUN/checkpoints/training-N.safetensors)")
    record = {"file": Path(path).name, "sha256": sha256_of(Path(path)), "step": checkpoint.metadata.get("step"),
              "images": checkpoint.metadata.get("images"), "dataset": checkpoint.metadata.get("dataset") or {}}
    return checkpoint, record


def widen_for_prior_input(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a warp generator without ``model.prior_input``, widened for one with it: the synthesis
    branch's first block (`SynthesisBranch.down[0]`: conv1 and its skip conv) gets zero weights for the prior's
    three new input channels, appended after the 6 it had, and its spectral norm's v gets zeros there. σ([W, 0]) =
    σ(W) and the power iteration keeps v's new entries at 0, so the widened network computes exactly what the old
    one did until training moves the new weights (for G and its EMA)."""
    widened = dict(tensors)
    extra = len(PRIOR_PARTS)
    for prefix in ("generator.", "ema.generator."):
        for conv in ("synthesis.down.0.conv1", "synthesis.down.0.skip"):
            name = f"{prefix}{conv}"
            if f"{name}.weight" not in tensors:
                continue
            weight = tensors[f"{name}.weight"]  # [out, 6, k, k]
            out, channels, kh, kw = weight.shape
            widened[f"{name}.weight"] = torch.cat([weight, weight.new_zeros(out, extra, kh, kw)], 1)
            v = tensors[f"{name}.sn_v"]  # [6 * k * k], flattened as weight.reshape(out, -1): channel-major
            widened[f"{name}.sn_v"] = torch.cat([v, v.new_zeros(extra * kh * kw)])
    return widened


def load_warm_start(modules: dict[str, torch.nn.Module], checkpoint: Checkpoint) -> None:
    """Copy a warm start's weights (`read_warm_start`) into ``modules`` (`MetaLearner.modules()`), all but W
    (strict otherwise)."""
    path = checkpoint.path
    tensors = dict(checkpoint.tensors)
    for name in MODULES:
        module = modules[name]
        if name == "discriminator":  # keep this run's W (its own videos), take everything else
            tensors.update({f"{name}.{key}": value for key, value in module.state_dict().items()
                            if f"{name}.{key}".startswith(RUN_ONLY)})
        load_model_state(module, tensors, prefix=f"{name}.", source=path)
    log.info("started from the warm start %s (step %s, %s images)", path, checkpoint.metadata.get("step"),
             checkpoint.metadata.get("images"))


def merge_identity_records(own: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """This run's identity record with the warm start's people added: everyone the weights have seen."""
    merged = dict(own)
    for key in ("identities", "identity_seeds"):
        if own.get(key) is not None or earlier.get(key) is not None:
            merged[key] = sorted(set(own.get(key) or []) | set(earlier.get(key) or []))
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.training.warm_start",
                                     description="a training checkpoint or an export -> a warm start (no W, no "
                                                 "optimizer state)")
    parser.add_argument("checkpoint", help="RUN/checkpoints/training-N.safetensors, or an export (RUN/export."
                                           "safetensors, the shipped model)")
    parser.add_argument("out", help="the warm start to write (.safetensors)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(make_warm_start(args.checkpoint, args.out))


if __name__ == "__main__":
    main()
