"""The models under evaluation and what their rows are called.

A checkpoint's variant (``config.train.variant``; checkpoints also record it as ``metadata["variant"]``) says
which model it is, so rows are labelled by what they measure:

* an FF checkpoint (meta-learned without L_MCH, the paper's feed-forward model) gives ``ours-FF`` rows only:
  ψ̂ = P ê from the T frames; an FF model is never fine-tuned.
* an FT checkpoint (meta-learned with L_MCH) gives ``ours-FT`` rows, fine-tuned on the T frames (paper §3.3),
  and ``ours-FT-init`` rows: the same checkpoint used feed-forward, the state fine-tuning starts from. These
  are not the paper's FF numbers; evaluate an FF checkpoint beside it for those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.evaluate.settings import EvaluationSettings

log = logging.getLogger(__name__)

FEED_FORWARD = "ours-FF"
FINE_TUNED = "ours-FT"
FINE_TUNED_INIT = "ours-FT-init"
COPY_SOURCE = "copy-source"
MESH_WARP = "mesh-warp"
MESH_WARP_BLUR = "mesh-warp+blur"
FIXED_BLEND = "fixed-blend"
METHOD_NOTES = {
    FEED_FORWARD: "the FF checkpoint (meta-learned without L_MCH), feed-forward: ψ̂ = P ê from the T frames",
    FINE_TUNED: "the FT checkpoint fine-tuned on the T frames (paper §3.3)",
    FINE_TUNED_INIT: "the FT checkpoint used feed-forward (ψ̂ = P ê): the state fine-tuning starts from, not the "
                     "paper's FF model",
    COPY_SOURCE: "baseline: the source frame most similar in pose, unchanged",
    MESH_WARP: "baseline: the most similar source frame warped onto the target landmarks",
    MESH_WARP_BLUR: "baseline: the mesh warp blurred by a Gaussian of sigma 0.5 px (what smoothing alone gains)",
    FIXED_BLEND: "baseline: the mesh warps of the 2 most similar source frames mixed 95/5 (a blend with nothing "
                 "learned)",
}


def checkpoint_variant(path: Path, config, metadata: dict) -> str:
    """"FF" or "FT": the checkpoint's ``config.train.variant``, checked against ``metadata["variant"]``."""
    variant = str(config.train.variant).upper()
    recorded = metadata.get("variant")
    if recorded is not None and str(recorded).upper() != variant:
        raise ValueError(f"{path}: its metadata says variant {recorded!r} but its config says {variant!r}; "
                         "the checkpoint is inconsistent, export it again from its training run")
    if variant not in ("FF", "FT"):
        raise ValueError(f"{path}: unknown variant {variant!r} in config.train.variant (expected FF or FT)")
    return variant


@dataclass
class EvaluatedModel:
    """One checkpoint under evaluation: its personalization and the labels of its rows."""

    path: Path
    head: Any
    """`talkinghead.inference.TalkingHead`."""
    variant: str
    metadata: dict
    finetune_steps: int | None = None
    finetune_epochs: int | None = None
    content_loss: Callable | None = None

    @property
    def feed_forward_label(self) -> str:
        return FEED_FORWARD if self.variant == "FF" else FINE_TUNED_INIT

    @property
    def fine_tunes(self) -> bool:
        """FT checkpoints are fine-tuned unless the length is 0; FF checkpoints never are."""
        return self.variant == "FT" and self.finetune_steps != 0 and self.finetune_epochs != 0

    @property
    def labels(self) -> list[str]:
        return [self.feed_forward_label] + ([FINE_TUNED] if self.fine_tunes else [])

    def holdout(self, shots: Sequence[int]) -> dict[int, dict[str, int]]:
        """Per T: frames fine-tuning trains on and frames it holds out for early stopping
        (`training.finetune.holdout_split`); empty when this model is not fine-tuned."""
        if not self.fine_tunes:
            return {}
        from talkinghead.training.finetune import holdout_split

        result = {}
        for t in shots:
            train, held = holdout_split(t, self.head.config.finetune)
            result[t] = {"train": len(train), "held_out": len(held)}
        return result

    def avatars(self, sources: list, seed: int) -> dict[str, Any]:
        """{label: avatar} personalized from ``sources``: feed-forward, and fine-tuned for an FT checkpoint."""
        avatars = {self.feed_forward_label: self.head.personalize(sources, steps=0, check_identity=False)}
        if self.fine_tunes:
            avatars[FINE_TUNED] = self.head.personalize(
                sources, steps=self.finetune_steps or 0, epochs=None if self.finetune_steps else self.finetune_epochs,
                content_loss=self.content_loss, seed=seed, check_identity=False)
        return avatars


def load_models(checkpoints: str | Path | Sequence[str | Path], settings: EvaluationSettings, device: str,
                content_loss: Callable | None = None) -> list[EvaluatedModel]:
    """Load each checkpoint (an inference export or a run directory) for evaluation.

    At most one FF and one FT checkpoint (their rows would share labels otherwise), of one image size.
    ``content_loss``: fine-tuning's content loss (default: each FT checkpoint's training content loss).
    """
    from talkinghead.checkpoint import load_checkpoint
    from talkinghead.inference import EXPORT_KIND, TalkingHead, default_content_loss, resolve_export

    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if not paths:
        raise ValueError("evaluate needs at least one --checkpoint")
    models: list[EvaluatedModel] = []
    for given in paths:
        path = resolve_export(given)
        metadata = load_checkpoint(path, expected_kind=EXPORT_KIND).metadata or {}
        head = TalkingHead.load(path, device=device, landmarks=_no_detection,
                                finetune_overrides=settings.finetune_overrides)
        variant = checkpoint_variant(path, head.config, metadata)
        twin = next((m for m in models if m.variant == variant), None)
        if twin is not None:
            raise ValueError(f"{given} and {twin.path} are both {variant} checkpoints; their rows would share labels, "
                             "so evaluate them into separate --out folders (one FF and one FT can share a report)")
        if models and head.config.model.image_size != models[0].head.config.model.image_size:
            raise ValueError(f"{given} makes {head.config.model.image_size}-pixel images but {models[0].path} makes "
                             f"{models[0].head.config.model.image_size}; only models of one size share a report")
        steps, epochs = settings.finetune_steps, settings.finetune_epochs
        if steps is None and epochs is None:
            epochs = head.config.finetune.epochs
        model = EvaluatedModel(path, head, variant, metadata, steps, epochs, content_loss)
        if model.fine_tunes and model.content_loss is None:
            try:
                model.content_loss = default_content_loss(head.config, head.device)
            except ImportError as error:
                raise RuntimeError(f"fine-tuned rows need the training content loss, which cannot be built here "
                                   f"({error}); pass --finetune-steps 0 to evaluate feed-forward only") from error
        if variant == "FF" and (settings.finetune_steps or settings.finetune_epochs):
            log.info("%s is an FF checkpoint: evaluated feed-forward only (an FF model is never fine-tuned)", path)
        models.append(model)
    return sorted(models, key=lambda m: m.variant)  # FF before FT, as in the paper's table


def _no_detection(image: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
    raise RuntimeError("evaluation personalizes from dataset frames with stored landmarks; nothing should detect")
