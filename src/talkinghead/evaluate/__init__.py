"""The paper's evaluation protocol (§4): self-reenactment on unseen people, with baselines, plus cross-identity
reenactment and a large-yaw split. `evaluate(checkpoints, data, out, EvaluationSettings(...))` is what
``talkinghead evaluate`` and the demo call.

Self-reenactment (paper §4, "50 videos ... 32 hold-out frames each"): for each test video, ``targets`` frames
(default 32) are the ground truth and, disjoint from them, T frames personalize the model, for each T of
``shots`` (the T = 1 frames are among the T = 8 frames, and so on, so T only adds information). Each ground-truth
frame is generated from its own landmarks (the dataset's, in its crop pixels: no retargeting) by the avatar's
``render``. Rows are labelled by what they are (`evaluate.models`): an FF checkpoint (meta-learned without
L_MCH) gives ``ours-FF`` (feed-forward, ψ̂ = P ê); an FT checkpoint gives ``ours-FT`` (fine-tuned, paper §3.3,
default 40 epochs) and ``ours-FT-init`` (the same checkpoint feed-forward: where fine-tuning starts). Pass one FF
and one FT checkpoint to get both models in one table, as in the paper. With T >= ``finetune.holdout_min_shots``
(8) fine-tuning holds frames out for early stopping (T = 8 trains on 7); the report says how many per T. The
copy-source and mesh-warp baselines (`metrics.baselines`) see the same T frames and the same targets. Frame
choices are deterministic from the seed and the video's key, and written to ``splits.json``.

Metrics per generated frame: SSIM, PSNR, L1 (against the ground truth), CSIM (identity descriptors, dlib by
default or ArcFace from an ONNX file), AKD and inter-ocular normalized AKD (landmarks detected on output and
ground truth); a video's value is the mean over its frames, a report row the mean over videos with a 95%
Student-t interval (`metrics.report`). FID is computed over all target frames of a (method, T) when the standard
Inception weights can be had, else reported as unavailable. Descriptors and landmarks of ground-truth frames
are computed once and cached (``cache/``).

Large-yaw split: the same metrics over only the target frames whose yaw differs from every source frame's by more
than 20°. Real clips turn little, so random sources seldom leave such a target; ``split="large-yaw"``
(``--split large-yaw``) chooses the frames for it instead: the targets are the frames turned furthest to one side,
the sources are drawn from the frames more than 20° short of every target, and only videos whose head turns that
much are tested (`protocol.large_yaw_split_frames`). Yaw is a synthetic clip's true motion, else ``meta.json``
"yaw" (written by `prepare`), else estimated from the stored landmarks as `prepare` does it
(`talkinghead.landmarks.pose`, a generic 3D face and solvePnP).

Cross-identity reenactment (``cross_identity=True``): each test video A is driven by the next test video B of
another identity (B's target frames, B's landmarks retargeted onto A's first source frame, in ``relative`` and
``absolute`` mode, reference = B's frame most similar to A's source). Identity: CSIM of each output against A's
source frames (mean). Motion following: AKD between the output's detected landmarks and the retargeted
landmarks. On synthetic datasets (clips record identity and motion seeds) the renderer draws the true "A with
B's motion" frame, framed by the same crop policy as every dataset clip, so SSIM / PSNR / L1 apply too.

Output folder::

    OUT/settings.json     what was evaluated (a resumed run must match it)
    OUT/splits.json       per video: target frames, source frames per T, cross-identity driver
    OUT/videos/*.json     per-video records (resume skips finished videos)
    OUT/report.json, table.md, plots/*.png       self-reenactment (Table 1 layout)
    OUT/large_yaw/...     the large-yaw split (when some target frame qualifies)
    OUT/cross_identity/{relative,absolute}/...   cross-identity reports
    OUT/sheets/<video>_T<T>.png                  contact sheets: source | ground truth | each method
    OUT/cache/            identity descriptors, ground-truth landmarks, FID features

Modules: `protocol` (splits, test videos, drivers, unseen identities), `frames` (frames, yaw, synthetic ground
truth), `scoring` (per-frame metrics, FID), `models` (checkpoints and row labels), `methods` (running every method
on one video), `settings` (`EvaluationSettings`, `Backends`), `run` (`evaluate`, resume, reports, summary).
"""

from talkinghead.evaluate.frames import is_synthetic, load_frames, synthetic_cross_ground_truth, video_yaw
from talkinghead.evaluate.methods import RETARGET_MODES, evaluate_video, render_batch, source_objects
from talkinghead.evaluate.models import (
    COPY_SOURCE,
    FEED_FORWARD,
    FINE_TUNED,
    FINE_TUNED_INIT,
    FIXED_BLEND,
    MESH_WARP,
    MESH_WARP_BLUR,
    METHOD_NOTES,
    EvaluatedModel,
    checkpoint_variant,
    load_models,
)
from talkinghead.evaluate.protocol import (
    DEFAULT_SHOTS,
    DEFAULT_TARGETS,
    LARGE_YAW_DEGREES,
    SPLITS,
    IdentityOverlapError,
    VideoSplit,
    assign_drivers,
    check_identity_overlap,
    dataset_identity_record,
    eyes_closed_split_frames,
    large_yaw_split_frames,
    mouth_open_split_frames,
    pick_test_videos,
    split_frames,
    temporal_window,
)
from talkinghead.evaluate.run import evaluate, format_summary, holdout_note, plan, write_reports
from talkinghead.evaluate.scoring import Detector, FrameScorer, default_detector, mean_metrics
from talkinghead.evaluate.settings import Backends, EvaluationSettings

__all__ = ["COPY_SOURCE", "DEFAULT_SHOTS", "DEFAULT_TARGETS", "FEED_FORWARD", "FINE_TUNED", "FINE_TUNED_INIT",
           "FIXED_BLEND", "LARGE_YAW_DEGREES", "MESH_WARP", "MESH_WARP_BLUR", "METHOD_NOTES", "RETARGET_MODES",
           "SPLITS", "Backends", "Detector", "EvaluatedModel", "EvaluationSettings", "FrameScorer",
           "IdentityOverlapError", "VideoSplit", "assign_drivers", "check_identity_overlap", "checkpoint_variant",
           "dataset_identity_record", "default_detector", "evaluate", "evaluate_video", "eyes_closed_split_frames",
           "format_summary",
           "holdout_note", "is_synthetic", "large_yaw_split_frames", "load_frames", "load_models", "mean_metrics",
           "mouth_open_split_frames", "pick_test_videos", "plan", "render_batch", "source_objects", "split_frames",
           "synthetic_cross_ground_truth", "temporal_window", "video_yaw", "write_reports"]
