"""Scoring: per-frame metrics (SSIM, PSNR, L1, CSIM, AKD, MKR) with the ground truth's descriptors and landmarks
computed once, their mean over a video's frames, and FID over all target frames of a (method, T).

CSIM and AKD exist only on frames where dlib finds the output's face, so each method's mean runs over its own
frames, and a method that loses the face on a hard frame drops that frame's (large) distance from its AKD
(measured on the held-out split at T = 8: the mesh warp lost 3 of 192 faces, the fine-tuned warp model 1; per-video
AKD 0.630 vs 0.635 over each method's own frames, 0.630 vs 0.631 over the same frames). Two numbers make the
comparison fair:
- MKR, the missing keypoint rate of FOMM's protocol (dlib finds all 68 points or none, so per face): the share of
  target frames with a face in the truth and none found in the output;
- the "same frames" means (`paired_metrics`): AKD and CSIM over the frames where every compared method has a
  value, so all methods are averaged over the same frames.
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

    def __init__(self, identity, detector: Detector) -> None:
        self.identity = identity  # a metrics.identity.CachedIdentity
        self.detector = detector
        self.landmarks: dict[str, np.ndarray | None] = {}
        self.seconds = 0.0

    def reference_landmarks(self, image: np.ndarray, key: str) -> np.ndarray | None:
        if key not in self.landmarks:
            self.landmarks[key] = self.detector(image)
        return self.landmarks[key]

    def descriptor(self, image: np.ndarray, key: str | None = None) -> np.ndarray | None:
        return self.identity.descriptor(image, key)

    def score(self, output: np.ndarray, reference: np.ndarray | None = None, reference_key: str | None = None,
              target_landmarks: np.ndarray | None = None,
              identity_references: Sequence[tuple[np.ndarray, str]] = ()) -> dict[str, float | None]:
        """Metrics of one output frame.

        reference: the true frame (SSIM, PSNR, L1; CSIM and AKD against it when ``reference_key`` is given).
        target_landmarks: landmarks the output should have (AKD against them instead of the detected ones).
        identity_references: (image, key) pairs; CSIM = mean cosine to their descriptors (instead of the
        reference's).
        """
        from talkinghead.metrics.identity import cosine_similarity
        from talkinghead.metrics.image import l1, psnr, ssim
        from talkinghead.metrics.landmark_distance import landmark_distance
        from talkinghead.metrics.realism import relative_sharpness

        started = time.perf_counter()
        values: dict[str, float | None] = {}
        if reference is not None:
            values.update(ssim=ssim(output, reference), psnr=psnr(output, reference), l1=l1(output, reference),
                          sharpness=relative_sharpness(output, reference))
        references = list(identity_references) or ([(reference, reference_key)] if reference_key else [])
        if references:
            mine = self.descriptor(output)
            cosines = [cosine_similarity(mine, theirs) for image, key in references
                       if mine is not None and (theirs := self.descriptor(image, key)) is not None]
            values["csim"] = float(np.mean(cosines)) if cosines else None
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
        self.seconds += time.perf_counter() - started
        return values


def mean_metrics(per_frame: Sequence[dict[str, float | None]], names: Sequence[str] | None = None) -> dict:
    """Mean of each metric over frames, leaving out None (a missing face); None when no frame has a value."""
    names = names or sorted({k for values in per_frame for k in values})
    result: dict[str, float | None] = {}
    for name in names:
        present = [v[name] for v in per_frame if v.get(name) is not None]
        result[name] = float(np.mean(present)) if present else None  # PSNR of an exact copy stays inf
    return result


PAIRED_METRICS = {"akd": "paired_akd", "csim": "paired_csim"}
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


def fid_set_metrics(out: Path, keys: Sequence[str], methods_shots: set, fid_network, reason: str,
                    metric: str = "fid") -> dict:
    """FID per (method, T) over the target frames of videos ``keys`` (features cached per video under
    ``out/cache/<metric>``), or ``{"value": None, "unavailable": reason}`` when it cannot be computed.
    ``metric="fd_mobilenet"``: the same Fréchet distance on the offline MobileNetV2 features (`metrics.realism`)."""
    from talkinghead.metrics.fid import frechet_distance_of_features

    if fid_network is None:
        return {ms: {metric: {"value": None, "unavailable": reason}} for ms in methods_shots}
    stores = [np.load(out / "cache" / metric / f"{safe_name(k)}.npz") for k in keys
              if (out / "cache" / metric / f"{safe_name(k)}.npz").is_file()]
    if len(stores) < len(keys):
        reason = f"{metric} features missing for {len(keys) - len(stores)} video(s) evaluated without its network"
        return {ms: {metric: {"value": None, "unavailable": reason}} for ms in methods_shots}
    real = np.concatenate([s["real"] for s in stores])
    result = {}
    for method, shots in methods_shots:
        fake = np.concatenate([s[f"{method}__T{shots}"] for s in stores])
        if len(real) < 2 or len(fake) < 2:
            result[(method, shots)] = {metric: {"value": None,
                                                "unavailable": "a Fréchet distance needs at least 2 images per set"}}
        else:
            result[(method, shots)] = {metric: {"value": frechet_distance_of_features(real, fake),
                                                "num_real": len(real), "num_fake": len(fake)}}
    return result


def safe_name(key: str) -> str:
    """A video key as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
