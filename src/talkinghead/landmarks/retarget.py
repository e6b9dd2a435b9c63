"""Retarget a driver's landmarks onto a source face (numpy only).

The paper drives a person's model with another person's landmarks as they are, which makes the avatar
inherit the driver's face geometry ("a noticeable personality mismatch", paper §4 / paper-notes §7).
Two modes:

* ``relative`` (default): the driver's motion is measured as displacements from a reference driver frame,
  with the driver's head pose (a similarity: position, scale, in-plane rotation) factored out, scaled per
  facial region by the ratio of the source's to the driver's region size (face shape), and applied to the
  source's own landmarks; the driver's head motion relative to the reference is then re-applied around the
  source. Driving a face with its own video, reference = first frame, reproduces the video exactly.
* ``absolute``: the paper's behaviour: the driver's landmarks, moved and scaled by one similarity transform
  that aligns the reference driver frame to the source.

Lip normalization (relative mode; `landmarks.lip_normalization`): the source's and the reference's mouths are
closed before the motion is measured between them, so that a source photographed with its mouth open follows the
driver's opening instead of adding its own to it.

All landmarks are float32 ``[68, 2]`` (x, y) pixels, iBUG 68 order; sequences are ``[T, 68, 2]``.
"""

from __future__ import annotations

import numpy as np

MODES = ("relative", "absolute")

# iBUG 68 regions.
JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
MOUTH = np.arange(48, 68)

# Points that move little with expression: the jaw's top ends (near the ears), the nose and the eye corners.
# Head pose (similarity) is estimated from these, so that an open mouth is not mistaken for a head motion.
RIGID = np.array([0, 1, 15, 16, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])

# (indices, whether the vertical size is measured on its own). The mouth's height in the reference is mostly
# its opening (often ~0), so its vertical motion is scaled by the width ratio; the eyes' vertical motion by
# their height ratio, so that a blink closes the source's eyes too (width ratio when the reference's eye is
# nearly shut).
_REGIONS = ((JAW, True), (BROWS, False), (NOSE, True), (RIGHT_EYE, True), (LEFT_EYE, True), (MOUTH, False))
_SCALE_LIMITS = (0.5, 2.0)


def similarity_transform(points: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) with
    ``target ≈ points @ A.T + t``. Returns ``(A [2, 2], t [2])``."""
    points = np.asarray(points, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mean_p, mean_t = points.mean(0), target.mean(0)
    p, q = points - mean_p, target - mean_t
    variance = (p**2).sum()
    if variance <= 1e-12:
        raise ValueError("cannot align landmarks: all points coincide")
    # Umeyama: covariance SVD, reflection removed.
    u, s, vt = np.linalg.svd(q.T @ p)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / variance
    linear = scale * rotation
    return linear, mean_t - linear @ mean_p


def _apply(transform: tuple[np.ndarray, np.ndarray], points: np.ndarray) -> np.ndarray:
    linear, shift = transform
    return points @ linear.T + shift


def _invert(transform: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    linear, shift = transform
    inverse = np.linalg.inv(linear)
    return inverse, -inverse @ shift


def _check(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2:] != (68, 2):
        raise ValueError(f"{name} must have shape [..., 68, 2] (iBUG 68 points), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return points


def _region_scales(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-point (sx, sy) ratios of the source's region sizes to the reference's, both in the same frame.
    [68, 2]; clipped to [0.5, 2] so that a bad detection cannot blow the motion up."""
    scales = np.ones((68, 2))
    for indices, own_height in _REGIONS:
        src, ref = source[indices], reference[indices]
        ref_extent = ref.max(0) - ref.min(0)
        src_extent = src.max(0) - src.min(0)
        sx = src_extent[0] / max(ref_extent[0], 1e-6)
        usable_height = own_height and ref_extent[1] > 0.2 * ref_extent[0]
        sy = src_extent[1] / ref_extent[1] if usable_height else sx
        scales[indices] = np.clip([sx, sy], *_SCALE_LIMITS)
    return scales


def normalized_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance after aligning ``a`` onto ``b`` with a similarity, in units of ``b``'s size
    (root-mean-square distance of its points from their centre). Pose- and scale-free shape difference."""
    a, b = _check("a", a), _check("b", b)
    aligned = _apply(similarity_transform(a, b), a)
    size = np.sqrt(((b - b.mean(0)) ** 2).sum(1).mean())
    return float(np.linalg.norm(aligned - b, axis=1).mean() / max(size, 1e-6))


def find_best_frame(driver_landmarks: np.ndarray, source_landmarks: np.ndarray) -> int:
    """Index of the driver frame whose landmarks are most similar to the source's (normalized landmark
    distance: similarity-aligned, divided by face size), to be used as the reference of relative retargeting.
    driver_landmarks: [T, 68, 2]; source_landmarks: [68, 2]."""
    driver = _check("driver_landmarks", driver_landmarks)
    source = _check("source_landmarks", source_landmarks)
    if driver.ndim != 3 or len(driver) == 0:
        raise ValueError(f"driver_landmarks must be [T, 68, 2] with T >= 1, got {driver.shape}")
    # Pose is compared too (unlike the shape-only normalized_distance): a frontal source wants a frontal
    # reference. Only the position and scale are removed, so rotation and expression count.
    def normalize(points: np.ndarray) -> np.ndarray:
        centred = points - points.mean(-2, keepdims=True)
        size = np.sqrt((centred**2).sum(-1).mean(-1))[..., None, None]
        return centred / np.maximum(size, 1e-6)

    distances = np.linalg.norm(normalize(driver) - normalize(source)[None], axis=-1).mean(-1)
    return int(np.argmin(distances))


class Retargeter:
    """Maps each driver frame's landmarks onto the source face; built once per (source, reference) pair.

    source_landmarks: [68, 2] in the source crop's pixels. reference_landmarks: [68, 2], the driver frame
    whose expression counts as "neutral" (usually the first frame, or `find_best_frame`). mode: "relative"
    (keep the source's face shape) or "absolute" (the paper: the driver's shape, aligned to the source).
    lip_normalization: in relative mode, close the source's and the reference's mouths first (module docstring);
    absolute mode takes the driver's mouth as it is, so there it changes nothing.
    """

    def __init__(self, source_landmarks: np.ndarray, reference_landmarks: np.ndarray, mode: str = "relative",
                 lip_normalization: bool = False):
        if mode not in MODES:
            raise ValueError(f"retarget mode must be one of {list(MODES)}, got {mode!r}")
        self.mode = mode
        self.lip_normalization = lip_normalization and mode == "relative"
        self.source = _check("source_landmarks", source_landmarks)
        self.reference = _check("reference_landmarks", reference_landmarks)
        if self.lip_normalization:
            from talkinghead.landmarks.lip_normalization import close_mouth

            self.source = close_mouth(self.source).astype(np.float64)
            self.reference = close_mouth(self.reference).astype(np.float64)
        if mode == "absolute":
            # One similarity for the whole video: driver reference -> source (all 68 points).
            self.to_source = similarity_transform(self.reference, self.source)
        else:
            # Driver reference frame -> source frame, from the rigid points only.
            self.to_source = similarity_transform(self.reference[RIGID], self.source[RIGID])
            # The source seen in the reference's frame, and each region's size ratio (face shape).
            self.source_in_reference = _apply(_invert(self.to_source), self.source)
            self.scales = _region_scales(self.source_in_reference, self.reference)

    def __call__(self, driver_landmarks: np.ndarray) -> np.ndarray:
        """Driver landmarks [68, 2] (or [T, 68, 2]) -> retargeted landmarks of the same shape, float32."""
        driver = _check("driver_landmarks", driver_landmarks)
        if driver.ndim == 3:
            return np.stack([self(frame) for frame in driver])
        if self.mode == "absolute":
            return _apply(self.to_source, driver).astype(np.float32)
        # Head pose of this frame relative to the reference (similarity on the rigid points).
        pose = similarity_transform(self.reference[RIGID], driver[RIGID])
        # Expression: the frame with its head pose undone, minus the reference. [68, 2]
        displacement = _apply(_invert(pose), driver) - self.reference
        # Same expression on the source's own shape, then the head pose, then into source pixels.
        moved = self.source_in_reference + displacement * self.scales
        return _apply(self.to_source, _apply(pose, moved)).astype(np.float32)


def retarget(
    driver_landmarks: np.ndarray,
    source_landmarks: np.ndarray,
    mode: str = "relative",
    reference: int | np.ndarray = 0,
    lip_normalization: bool = False,
) -> np.ndarray:
    """Retarget a whole driver sequence [T, 68, 2] onto the source [68, 2]; returns [T, 68, 2] float32.
    ``reference`` is a frame index into the driver or a [68, 2] array."""
    driver = _check("driver_landmarks", driver_landmarks)
    if driver.ndim != 3:
        raise ValueError(f"driver_landmarks must be [T, 68, 2], got {driver.shape}")
    reference_points = driver[reference] if isinstance(reference, (int, np.integer)) else reference
    return Retargeter(source_landmarks, reference_points, mode, lip_normalization)(driver)
