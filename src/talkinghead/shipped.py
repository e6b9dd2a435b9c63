"""The shipped real-face model: the weights ``talkinghead animate`` uses when no ``--checkpoint`` is given.

``src/talkinghead/weights/talkinghead-warp128-shared.safetensors`` is an inference export (kind ``export``) of
warp-128 meta-learned on the training part of ``docs/splits/shared-dev-data.json``: the embedder E, the warp
generator G (with P) and the discriminator's V, w0 and b (what fine-tuning needs; W, one row per training clip, is
left out), with the identity record of the people it was trained on (``metadata["dataset"]["identities"]``), so
evaluation refuses them and ``tests/test_shipped_model.py`` checks that no held-out person is among them. Its
model card is ``docs/model-card.md``.

    head = TalkingHead.load()                 # no path: the shipped model (one log line says which file)
    head = TalkingHead.load_shipped()         # the same, explicitly

Refresh it from a run (strips W, adds the training index's counts, prints the file's SHA-256 and size)::

    python -m talkinghead.shipped RUN/export.safetensors --index DATASET/index.json [--set model.inference_sources=3]

``--set`` changes how the generator is run (`config.INFERENCE_MODEL_FIELDS`) or how new people are fine-tuned
(``finetune.*``), chosen on validation, never a trained shape; the file records each change and the value it replaced
(``metadata["run_settings_changed"]``: model fields by name, the others as ``finetune.NAME``).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from talkinghead.checkpoint import load_checkpoint, packaged_weights, require_packaged_weights, save_checkpoint
from talkinghead.perceptual_weights import sha256_of
from talkinghead.training.warm_start import RUN_ONLY  # W: meaningless for new people (FT starts w′ at w0 + ê)

log = logging.getLogger(__name__)

SHIPPED_MODEL = "talkinghead-warp128-shared.safetensors"
MAX_BYTES = 25 * 1024 * 1024
"""The package carries at most 25 MB of shipped weights."""
MODEL_CARD = "docs/model-card.md"


def shipped_model_path() -> Path:
    """Where this installation keeps the shipped model; a clear error when it is missing."""
    return require_packaged_weights(SHIPPED_MODEL, "the shipped model",
                                    "pass --checkpoint RUN (a training run directory or its export)")


def describe(metadata: dict[str, Any], preset: str) -> str:
    """What a shipped model was trained on, in a few words (from its checkpoint metadata)."""
    dataset = metadata.get("dataset") or {}
    training = metadata.get("training_data") or {}
    people = len(dataset.get("identities") or [])
    clips = training.get("clips", metadata.get("num_videos"))
    frames = training.get("frames")
    counts = f"{people} people, {clips} clips" + (f", {frames:,} frames" if frames else "")
    warm = metadata.get("warm_start") or {}
    steps = f"{metadata.get('step')} steps" + (f" after a warm start of {warm['step']}" if "step" in warm else "")
    return (f"{preset} meta-learned for {steps} on the training part of "
            f"{training.get('split', 'docs/splits/shared-dev-data.json')} ({counts}; research use only, see "
            f"{MODEL_CARD})")


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """``checkpoint`` as given, or the shipped model when it is None, said in one log line."""
    if checkpoint is not None:
        return Path(checkpoint)
    path = shipped_model_path()
    found = load_checkpoint(path)
    log.info("no checkpoint given: using the shipped model %s, %s", path.name,
             describe(found.metadata, found.config.preset))
    return path


def make_shipped_model(export: str | Path, out: str | Path, index: str | Path | None = None,
                       run_settings: Sequence[str] = ()) -> dict[str, Any]:
    """Copy an inference export (``RUN/export.safetensors``) to ``out`` without W, recording where it came from
    and, with ``index`` (the training dataset's ``index.json``), its clip, frame and people counts, after checking
    the export's identity record names exactly the index's people. ``run_settings``: ``model.FIELD=VALUE`` items of
    `config.INFERENCE_MODEL_FIELDS` and ``finetune.FIELD=VALUE`` items (how the shipped model runs and fine-tunes;
    anything else is refused). Returns the file's
    path, SHA-256 and size."""
    from talkinghead.config import INFERENCE_MODEL_FIELDS, apply_overrides, parse_override

    checkpoint = load_checkpoint(export, expected_kind="export")
    config = checkpoint.config
    changed: dict[str, dict[str, Any]] = {}
    fields = []
    for item in run_settings:
        section, name, _ = parse_override(item)
        if not (section == "finetune" or (section == "model" and name in INFERENCE_MODEL_FIELDS)):
            raise ValueError(f"--set {item}: the shipped model's run settings are model."
                             f"{', model.'.join(INFERENCE_MODEL_FIELDS)} and finetune.*; the rest describes the "
                             "trained networks")
        fields.append((section, name, getattr(getattr(config, section), name)))
    # all at once, then checked together: settings that depend on each other (lid_prior and lid_colour_match)
    # may come in any order, as they may for `evaluate` and `animate`
    config = apply_overrides(config, list(run_settings))
    for section, name, before in fields:
        key = name if section == "model" else f"{section}.{name}"  # model fields by bare name, as files recorded
        changed[key] = {"from": before, "to": getattr(getattr(config, section), name)}
    identities = (checkpoint.metadata.get("dataset") or {}).get("identities")
    if not identities:
        raise ValueError(f"{export}: the export records no training identities (metadata 'dataset'); the shipped "
                         "model must say who it was trained on; export it again with the training command")
    metadata = dict(checkpoint.metadata)
    metadata["made_from"] = {"file": Path(export).name, "sha256": sha256_of(Path(export))}
    if changed:
        metadata["run_settings_changed"] = changed
    if index is not None:
        data = json.loads(Path(index).read_text())
        people = sorted({video["identity"] for video in data["videos"]})
        if people != sorted(identities):
            raise ValueError(f"{index} lists other people than the identity record of {export} "
                             f"({len(people)} against {len(identities)}); pass the index the run was trained on")
        split = data.get("identity_split") or {}
        metadata["training_data"] = {"clips": data["num_videos"], "frames": data["num_frames"],
                                     "people": len(people), "split": "docs/splits/shared-dev-data.json",
                                     "split_sha256": split.get("sha256"), "part": split.get("part")}
    tensors = {name: tensor for name, tensor in checkpoint.tensors.items() if not name.startswith(RUN_ONLY)}
    path = save_checkpoint(out, tensors, config, kind="export", metadata=metadata)
    path.chmod(0o644)  # save_checkpoint's temporary file is private; a packaged file is read by everyone
    size = path.stat().st_size
    if size > MAX_BYTES:
        path.unlink()
        raise ValueError(f"{export} stripped is {size / 1e6:.1f} MB, over the package's {MAX_BYTES / 2**20:.0f} MB; "
                         "ship a smaller preset")
    return {"path": str(path), "sha256": sha256_of(path), "bytes": size, "step": metadata.get("step"),
            "people": len(identities)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.shipped",
                                     description="an inference export -> the shipped model in the package")
    parser.add_argument("export", help="RUN/export.safetensors")
    parser.add_argument("--index", default=None, help="the training dataset's index.json (adds its counts)")
    parser.add_argument("-o", "--out", default=None, help=f"default: the package's weights/{SHIPPED_MODEL}")
    parser.add_argument("--set", dest="run_settings", action="append", default=[], metavar="model.FIELD=VALUE",
                        help="how the shipped model runs (config.INFERENCE_MODEL_FIELDS) or fine-tunes "
                             "(finetune.*), e.g. model.inference_sources=3; recorded in the file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or packaged_weights(SHIPPED_MODEL)
    try:
        result = make_shipped_model(args.export, out, args.index, args.run_settings)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
