"""The one crop policy: a square box around the face from its 68 landmarks, VoxCeleb-like framing.

Used by dataset building, fine-tuning sources and driving videos alike, so a model never sees a framing at
test time that it did not see in training (mismatched crops are a common complaint, paper-notes §6.4).

Box (`crop_box`): side = ``scale`` x the landmarks' extent (max of their bounding box's width and height;
``DataConfig.crop_scale``), centred on the landmarks' box centre moved up by ``lift`` x extent, because the
68 points stop at the brows: the margin above them holds forehead and hair, the margin below the neck and
the top of the shoulders. The defaults (``DataConfig.crop_scale`` 2.0, ``DataConfig.crop_lift`` 0.15: the
landmarks' centre 0.15 extent below the crop centre) were chosen by looking at crops of the shared portraits
and clips; for comparison, the shared raw VoxCeleb2 clips measure scale 1.5-1.8 with the landmarks' centre
0.1 extent above the crop centre, first-order-model's VoxCeleb crops 1.7-2.1 with it 0.15-0.2 below.

Videos (`crop_boxes`): per-frame boxes smoothed over time (a Gaussian over ``smoothing_seconds``, applied to
centre and size), so the crop does not shake with landmark jitter.

Cropping (`crop_image`): the box is rounded to whole pixels, cut out, PADDED (black by default) where it
leaves the image and resized to ``size`` x ``size`` (area interpolation when shrinking): never squashed.
The returned `CropTransform` maps points between the original image and the crop, so landmarks are stored
in crop pixel coordinates (one coordinate system, saved with the data via `CropTransform.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

DEFAULT_SCALE = 2.0
DEFAULT_LIFT = 0.15
PAD_MODES = {"constant": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}


@dataclass(frozen=True)
class CropBox:
    """A square box in pixel coordinates of the source image; may extend past its borders."""

    left: float
    top: float
    size: float

    @property
    def center(self) -> tuple[float, float]:
        return self.left + self.size / 2.0, self.top + self.size / 2.0

    def rounded(self) -> CropBox:
        """The same box on whole pixels (what `crop_image` cuts)."""
        size = max(1, int(round(self.size)))
        cx, cy = self.center
        return CropBox(float(int(round(cx - size / 2.0))), float(int(round(cy - size / 2.0))), float(size))


@dataclass(frozen=True)
class CropTransform:
    """Maps source-image pixel coordinates to crop pixel coordinates and back.

    Pixel centres are at integer coordinates in both images (OpenCV's resize convention):
    ``crop = (source - [left, top] + 0.5) * scale - 0.5``.
    """

    left: float
    top: float
    scale: float
    """Crop pixels per source pixel (output size / box size)."""
    size: int
    """Side of the crop in pixels."""

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source-image points ``[..., 2]`` (x, y) -> crop coordinates (float32)."""
        points = np.asarray(points, dtype=np.float64)
        offset = np.array([self.left, self.top])
        return ((points - offset + 0.5) * self.scale - 0.5).astype(np.float32)

    def from_crop(self, points: np.ndarray) -> np.ndarray:
        """Crop points ``[..., 2]`` -> source-image coordinates (float32)."""
        points = np.asarray(points, dtype=np.float64)
        offset = np.array([self.left, self.top])
        return ((points + 0.5) / self.scale - 0.5 + offset).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> CropTransform:
        return cls(float(values["left"]), float(values["top"]), float(values["scale"]), int(values["size"]))


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must have shape [..., 68, 2] (iBUG 68 points), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks contain NaN or infinite values; fill or drop missing frames before cropping")
    return points


def crop_box(points: np.ndarray, scale: float = DEFAULT_SCALE, lift: float = DEFAULT_LIFT) -> CropBox:
    """The square crop box of one face from its landmarks ``[68, 2]`` (see the module docstring)."""
    points = _check_points(points)
    if scale < 1.0:
        raise ValueError(f"crop scale must be >= 1 (the crop must contain the landmarks), got {scale}")
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float(max(high - low))
    if extent <= 0:
        raise ValueError("landmarks have zero extent; cannot place a crop box")
    cx, cy = (low + high) / 2.0
    cy -= lift * extent
    size = scale * extent
    return CropBox(float(cx - size / 2.0), float(cy - size / 2.0), float(size))


def crop_boxes(track: np.ndarray, fps: float, scale: float = DEFAULT_SCALE, lift: float = DEFAULT_LIFT,
               smoothing_seconds: float = 0.3) -> list[CropBox]:
    """One crop box per frame of a landmark track ``[T, 68, 2]``, smoothed over time.

    Centre and size are each smoothed with a Gaussian of standard deviation ``smoothing_seconds`` (0 = off),
    edges held (no shrinking towards zero at the ends of the clip).
    """
    track = _check_points(track)
    if track.ndim != 3:
        raise ValueError(f"a landmark track must be [T, 68, 2], got {track.shape}")
    boxes = [crop_box(points, scale, lift) for points in track]
    values = np.array([[*box.center, box.size] for box in boxes])  # [T, 3]: cx, cy, size
    sigma = smoothing_seconds * fps
    if sigma > 0 and len(boxes) > 1:
        values = _gaussian_smooth(values, sigma)
    return [CropBox(float(cx - s / 2.0), float(cy - s / 2.0), float(s)) for cx, cy, s in values]


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along axis 0 with edge padding. values: [T, C]."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(values.shape[1])], axis=1)


def crop_image(image: np.ndarray, box: CropBox, size: int, pad_mode: str = "constant") -> tuple[np.ndarray,
                                                                                                 CropTransform]:
    """Cut ``box`` out of a uint8 ``[H, W, C]`` image, pad outside the image, resize to ``size`` x ``size``.

    ``pad_mode``: ``constant`` (black, default: missing content is visibly missing), ``edge`` or ``reflect``.
    Returns the crop and the `CropTransform` mapping source-image points into it.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {sorted(PAD_MODES)}, got {pad_mode!r}")
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    box = box.rounded()
    left, top, side = int(box.left), int(box.top), int(box.size)
    height, width = image.shape[:2]
    # The part of the box inside the image, and how much padding each side needs.
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop box {box} lies entirely outside the {width}x{height} image")
    patch = image[y0:y1, x0:x1]
    pads = (y0 - top, top + side - y1, x0 - left, left + side - x1)  # top, bottom, left, right
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=PAD_MODES[pad_mode], value=(0, 0, 0, 0))
    interpolation = cv2.INTER_AREA if size < side else cv2.INTER_CUBIC
    crop = patch if size == side else cv2.resize(patch, (size, size), interpolation=interpolation)
    if crop.ndim == 2 and image.ndim == 3:
        crop = crop[:, :, None]
    return np.ascontiguousarray(crop), CropTransform(float(left), float(top), size / side, size)


def crop_face(image: np.ndarray, points: np.ndarray, size: int, scale: float = DEFAULT_SCALE,
              lift: float = DEFAULT_LIFT) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """One face cut out with the crop policy (pass the training data's ``DataConfig.crop_scale`` and
    ``crop_lift``): (crop uint8 [size, size, 3], landmarks [68, 2] in crop pixels, (left, top, side) of the box
    in the image's pixels)."""
    crop, transform = crop_image(image, crop_box(points, scale=scale, lift=lift), size)
    return crop, transform.to_crop(points), (transform.left, transform.top, size / transform.scale)
