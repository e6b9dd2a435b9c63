"""Scoring: per-frame metrics (SSIM, PSNR, L1, CSIM, dlib's identity distance and verification, AKD, MKR) with the
ground truth's descriptors and landmarks computed once, their mean over a video's frames, and FID (with a bootstrap
interval) and KID over all target frames of a (method, T).

CSIM and AKD exist only on frames where dlib finds the output's face, so each method's mean runs over its own
frames, and a method that loses the face on a hard frame drops that frame's (large) distance from its AKD
(measured on the held-out split at T = 8: the mesh warp lost 3 of 192 faces, the fine-tuned warp model 1; per-video
AKD 0.630 vs 0.635 over each method's own frames, 0.630 vs 0.631 over the same frames). Two numbers make the
comparison fair:
- MKR, the missing keypoint rate of FOMM's protocol (dlib finds all 68 points or none, so per face): the share of
  target frames with a face in the truth and none found in the output;
- the "same frames" means (`paired_metrics`): AKD and CSIM over the frames where every compared method has a
  value, so all methods are averaged over the same frames.

With the truth's landmarks (``mouth_landmarks``) each frame also gets the mouth-region metrics and the teeth
(`metrics.mouth.teeth_metrics`, issue 25). The teeth are shares of frames: `mean_metrics` also counts each one's
frames (``teeth_shown_frames``), and the report pools them over all videos' frames (`metrics.report.pooled_share`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Detector = Callable[[np.ndarray], "np.ndarray | None"]
"""detector(uint8 RGB image) -> [68, 2] landmarks, or None when no face is found."""


def default_detector() -> Detector:
    """The project's landmark detector (dlib) as ``image -> [68, 2] | None``."""
    from talkinghead.landmarks import NoFaceError, detect_landmarks

    def detect(image: np.ndarray) -> np.ndarray | None:
        try:
            return np.asarray(detect_landmarks(image), dtype=np.float64)
        except NoFaceError:
            return None

    return detect


class FrameScorer:
    """Per-frame metrics with the ground truth's descriptors and landmarks computed once (keyed by frame)."""

    def __init__(self, identity, detector: Detector, independent: tuple[str, Detector] | None = None) -> None:
        self.identity = identity  # a metrics.identity.CachedIdentity
        self.detector = detector
        self.independent = independent
        """(name, detector) of a landmark detector other than the one that drove the warp, or None: AKD measured by
        dlib is circular (dlib's landmarks drive the warp, then dlib measures the output), so when an independent
        detector is installed (`landmarks.optional_backends.independent_detector`) it measures ``akd_independent``
        too, on the frames where it finds both faces."""
        self.landmarks: dict[str, np.ndarray | None] = {}
        self.independent_landmarks: dict[str, np.ndarray | None] = {}
        self.seconds = 0.0

    def reference_landmarks(self, image: np.ndarray, key: str) -> np.ndarray | None:
        if key not in self.landmarks:
            self.landmarks[key] = self.detector(image)
        return self.landmarks[key]

    def descriptor(self, image: np.ndarray, key: str | None = None) -> np.ndarray | None:
        return self.identity.descriptor(image, key)

    def score(self, output: np.ndarray, reference: np.ndarray | None = None, reference_key: str | None = None,
              target_landmarks: np.ndarray | None = None,
              identity_references: Sequence[tuple[np.ndarray, str]] = (),
              mouth_landmarks: np.ndarray | None = None) -> dict[str, float | None]:
        """Metrics of one output frame.

        reference: the true frame (SSIM, PSNR, L1; CSIM and AKD against it when ``reference_key`` is given).
        target_landmarks: landmarks the output should have (AKD against them instead of the detected ones).
        identity_references: (image, key) pairs; CSIM = mean cosine to their descriptors (instead of the
        reference's).
        mouth_landmarks: the reference's landmarks [68, 2]: the mouth-region metrics and the teeth
        (``teeth_shown``/``teeth_invented``, `metrics.mouth.mouth_metrics`) and the eye-region metrics
        (`metrics.eyes.eye_metrics`) against the reference.
        With an identity backend that has a same-person threshold (dlib's 0.6): ``identity_distance``, the mean
        descriptor distance to the same references, and ``verified``, 1.0 when it is below the threshold.
        """
        from talkinghead.metrics.eyes import eye_metrics
        from talkinghead.metrics.identity import cosine_similarity, identity_distance, verified
        from talkinghead.metrics.image import l1, psnr, ssim
        from talkinghead.metrics.landmark_distance import landmark_distance
        from talkinghead.metrics.mouth import mouth_metrics
        from talkinghead.metrics.realism import relative_sharpness

        started = time.perf_counter()
        values: dict[str, float | None] = {}
        if reference is not None:
            values.update(ssim=ssim(output, reference), psnr=psnr(output, reference), l1=l1(output, reference),
                          sharpness=relative_sharpness(output, reference))
            if mouth_landmarks is not None:
                values.update(mouth_metrics(output, reference, mouth_landmarks))
                values.update(eye_metrics(output, reference, mouth_landmarks))
        references = list(identity_references) or ([(reference, reference_key)] if reference_key else [])
        if references:
            mine = self.descriptor(output)
            theirs = [found for image, key in references
                      if mine is not None and (found := self.descriptor(image, key)) is not None]
            values["csim"] = float(np.mean([cosine_similarity(mine, t) for t in theirs])) if theirs else None
            # dlib's distance and 0.6 verification; not with a backend that has no documented threshold (ArcFace)
            if (threshold := getattr(self.identity, "same_person_threshold", None)) is not None:
                distance = identity_distance(mine, theirs)
                values.update(identity_distance=distance, verified=verified(distance, threshold))
        if target_landmarks is None and reference_key is not None:
            target_landmarks = self.reference_landmarks(reference, reference_key)
        if target_landmarks is not None or reference_key is not None:
            detected = self.detector(output)
            # MKR counts only frames whose truth has a face: a face the truth lacks cannot be missed.
            values["mkr"] = None if target_landmarks is None else float(detected is None)
            if detected is None or target_landmarks is None:
                values.update(akd=None, normalized_akd=None)
            else:
                distance = landmark_distance(detected, target_landmarks)
                values.update(akd=distance.akd, normalized_akd=distance.normalized_akd)
        if self.independent is not None and reference is not None and reference_key is not None:
            name, detect = self.independent
            if reference_key not in self.independent_landmarks:
                self.independent_landmarks[reference_key] = detect(reference)
            truth, found = self.independent_landmarks[reference_key], detect(output)
            values["akd_independent"] = (None if truth is None or found is None
                                         else landmark_distance(found, truth).akd)
        self.seconds += time.perf_counter() - started
        return values


def mean_metrics(per_frame: Sequence[dict[str, float | None]], names: Sequence[str] | None = None) -> dict:
    """Mean of each metric over frames, leaving out None (a missing face); None when no frame has a value. For a
    share of frames (`metrics.report.FRAME_SHARES`: the teeth) also ``<name>_frames``, how many frames it counts, so
    that the report can pool the videos' frames."""
    from talkinghead.metrics.report import FRAME_COUNT, FRAME_SHARES

    names = names or sorted({k for values in per_frame for k in values})
    result: dict[str, float | None] = {}
    for name in names:
        present = [v[name] for v in per_frame if v.get(name) is not None]
        result[name] = float(np.mean(present)) if present else None  # PSNR of an exact copy stays inf
        if name in FRAME_SHARES:
            result[name + FRAME_COUNT] = len(present)
    return result


PAIRED_METRICS = {"akd": "paired_akd", "csim": "paired_csim", "identity_distance": "paired_identity_distance",
                  "verified": "paired_verified"}
"""Metrics that exist only where a face is found -> the name of their mean over the frames every method has."""


def paired_metrics(per_frame: dict[str, Sequence[dict[str, float | None]]]) -> dict[str, dict[str, float | None]]:
    """``{method: {paired name: mean}}`` for `PAIRED_METRICS`: each metric averaged over the frames where EVERY
    method in ``per_frame`` ({method: per-frame values, the same frames in the same order}) has a value; None when
    no frame has one for all. Methods without the metric at all are left out of its pairing."""
    lengths = {len(values) for values in per_frame.values()}
    if len(lengths) > 1:
        raise ValueError(f"paired metrics need the same frames for every method, got {lengths} frames")
    frames = lengths.pop() if lengths else 0
    result: dict[str, dict[str, float | None]] = {method: {} for method in per_frame}
    for name, paired in PAIRED_METRICS.items():
        having = {m: v for m, v in per_frame.items() if any(name in frame for frame in v)}
        common = [i for i in range(frames) if all(v[i].get(name) is not None for v in having.values())]
        for method, values in having.items():
            result[method][paired] = float(np.mean([values[i][name] for i in common])) if common else None
    return result


KID_METRICS = {"fid": "kid", "fd_mobilenet": "kid_mobilenet"}
"""The KID computed beside each Fréchet set metric, on the same features."""


def fid_set_metrics(out: Path, keys: Sequence[str], methods_shots: set, fid_network, reason: str,
                    metric: str = "fid", confidence: float = 0.95) -> dict:
    """FID per (method, T) over the target frames of videos ``keys`` (features cached per video under
    ``out/cache/<metric>``), or ``{"value": None, "unavailable": reason}`` when it cannot be computed.
    ``metric="fd_mobilenet"``: the same Fréchet distance on the offline MobileNetV2 features (`metrics.realism`).
    Beside it, KID on the same features (`KID_METRICS`). Both carry "low"/"high"/"se", the delete-one-video
    jackknife interval (`metrics.fid.jackknife_interval`; videos are the independent units), and "interval"."""
    from talkinghead.metrics.fid import frechet_distance_interval, kernel_distance_interval

    names = [metric, KID_METRICS[metric]] if metric in KID_METRICS else [metric]
    if fid_network is None:
        return {ms: {name: {"value": None, "unavailable": reason} for name in names} for ms in methods_shots}
    stores = [np.load(out / "cache" / metric / f"{safe_name(k)}.npz") for k in keys
              if (out / "cache" / metric / f"{safe_name(k)}.npz").is_file()]
    if len(stores) < len(keys):
        reason = f"{metric} features missing for {len(keys) - len(stores)} video(s) evaluated without its network"
        return {ms: {name: {"value": None, "unavailable": reason} for name in names} for ms in methods_shots}
    real = np.concatenate([s["real"] for s in stores])
    real_videos = np.concatenate([np.full(len(s["real"]), i) for i, s in enumerate(stores)])
    interval = f"delete-one-video jackknife, {round(confidence * 100)}% Student-t"
    result = {}
    for method, shots in methods_shots:
        parts = [s[f"{method}__T{shots}"] for s in stores]
        fake = np.concatenate(parts)
        if len(real) < 2 or len(fake) < 2:
            unavailable = "a Fréchet distance needs at least 2 images per set"
            result[(method, shots)] = {name: {"value": None, "unavailable": unavailable} for name in names}
            continue
        fake_videos = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        found = {metric: frechet_distance_interval(real, fake, real_videos, fake_videos, confidence)}
        if len(names) > 1:
            found[names[1]] = kernel_distance_interval(real, fake, real_videos, fake_videos, confidence)
        result[(method, shots)] = {name: {**value, "num_real": len(real), "num_fake": len(fake), "interval": interval}
                                   for name, value in found.items()}
    return result


def safe_name(key: str) -> str:
    """A video key as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
