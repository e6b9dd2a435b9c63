"""Composing animated frames for viewing: the whole source picture with the animated head in it (`WholePicture`,
what `animate` writes by default), paste-back of a crop, side-by-side panels and the visible "SYNTHETIC" mark.
Image functions on uint8 RGB [H, W, 3] arrays (numpy, cv2 and the landmark mesh)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from talkinghead.landmarks.mesh import sampling_grid

MAX_PICTURE_SIDE = 1080
"""`WholePicture`'s default cap on the output's long side, in pixels (a larger picture is scaled down)."""
FOLLOW_NEAR, FOLLOW_FAR = 0.5, 2.0
"""Around the face the picture moves fully with the head up to FOLLOW_NEAR face sizes (the landmarks' extent)
from the face's hull, and not at all from FOLLOW_FAR on (smoothly between): hair, ears and neck follow, the body,
hands and background further away stay where they are."""
MESH_STEP = 4
"""The whole picture's mesh warp is computed on a grid this many times coarser, then upsampled: it is piecewise
affine, so bilinear upsampling changes it by a small fraction of a pixel, at a 16th of the cost."""


class WholePicture:
    """The animated head pasted back into the whole source picture, the rest of the picture following the head.

    Per frame, the picture (scaled so its long side is at most ``max_side``) is mesh-warped from the source's
    landmarks to the frame's (`landmarks.mesh`: the 68 points plus anchors on the picture's border), its motion
    fading with the distance from the face (`FOLLOW_NEAR`, `FOLLOW_FAR`), so hair, ears and neck move with the head
    while the body and the border stay still; then the rendered head crop is blended in over the face. Inside the
    face the two agree (both follow the same landmarks; the head adds the learned corrections: mouth, eyes), so the
    seam lies where they agree and does not show. The blend mask is fixed
    (the source face's hull, feathered inward), so the seam cannot flicker.

    ``picture`` uint8 [H, W, 3]; ``box`` (left, top, side) of the avatar's crop in the picture's pixels;
    ``rest_landmarks`` [68, 2] the source's landmarks in crop pixels of a ``crop_size`` crop. `head_size` is the
    crop's side in output pixels: render the head at that size for a 1:1 paste.
    """

    def __init__(self, picture: np.ndarray, box: tuple[float, float, float], rest_landmarks: np.ndarray,
                 crop_size: int, max_side: int = MAX_PICTURE_SIDE) -> None:
        if max_side < 16:
            raise ValueError(f"max_side must be at least 16 px, got {max_side}")
        height, width = picture.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = size[0] / width, size[1] / height
        else:
            scale_x = scale_y = 1.0
        self.picture = np.ascontiguousarray(picture)
        height, width = self.picture.shape[:2]
        left, top, side = box
        # The crop box in output pixels (pixel centres at integers: x_out = (x_in + 0.5) * scale - 0.5).
        self.box = ((left + 0.5) * scale_x - 0.5, (top + 0.5) * scale_y - 0.5, side * scale_x)
        self.crop_size = crop_size
        self.head_size = max(16, round(self.box[2]))
        self.rest = self.to_picture(rest_landmarks)
        # The region the head can touch: its box, cut to the picture.
        left, top, side = self.box
        self.region = (max(0, math.floor(left)), max(0, math.floor(top)),
                       min(width, math.ceil(left + side)), min(height, math.ceil(top + side)))  # x0, y0, x1, y1
        self.mask = self._face_mask()
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._pixels = (xs, ys)
        self._coarse = (math.ceil(height / MESH_STEP), math.ceil(width / MESH_STEP))
        coarse_ys, coarse_xs = np.mgrid[0:self._coarse[0], 0:self._coarse[1]].astype(np.float32)
        self._coarse_pixels = (coarse_xs, coarse_ys)
        self._follow = self._follow_weight()

    def to_picture(self, landmarks: np.ndarray) -> np.ndarray:
        """Landmarks [68, 2] in crop pixels (of ``crop_size``) -> output picture pixels."""
        left, top, side = self.box
        return (np.asarray(landmarks, np.float64) + 0.5) * (side / self.crop_size) - 0.5 + np.array([left, top])

    def _face_mask(self) -> np.ndarray:
        """float32 [y1 - y0, x1 - x0, 1]: 1 on the source face (the hull of its landmarks), falling to about 0 at
        the hull's edge (shrunk by 1.5 sigma, then a Gaussian of sigma = 6 % of the face's extent)."""
        x0, y0, x1, y1 = self.region
        extent = float(np.ptp(self.rest, axis=0).max())
        sigma = max(1.0, 0.06 * extent)
        hull = cv2.convexHull(np.round((self.rest - [x0, y0]) * 16).astype(np.int32))
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
        shrink = max(1, round(1.5 * sigma))
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1)))
        return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)[..., None]

    def _follow_weight(self) -> np.ndarray:
        """float32 [h, w] on the coarse grid: how much of the head's motion each place follows (1 near the face,
        0 from `FOLLOW_FAR` face sizes away, a smoothstep between)."""
        height, width = self.picture.shape[:2]
        coarse_height, coarse_width = self._coarse
        scale = np.array([coarse_width / width, coarse_height / height])
        hull = cv2.convexHull(np.round(((self.rest + 0.5) * scale - 0.5) * 16).astype(np.int32))
        outside = np.full(self._coarse, 255, np.uint8)
        cv2.fillConvexPoly(outside, hull, 0, lineType=cv2.LINE_8, shift=4)
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5) / scale.mean()  # in output pixels
        extent = float(np.ptp(self.rest, axis=0).max())
        t = np.clip((distance - FOLLOW_NEAR * extent) / ((FOLLOW_FAR - FOLLOW_NEAR) * extent), 0, 1)
        return (1 - t * t * (3 - 2 * t)).astype(np.float32)

    def regions(self, low: float = 0.05, high: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks over the output picture [H, W]: the face (the head alone, mask > ``high``) and the seam
        (where head and picture blend, ``low`` < mask <= ``high``), for measuring each (e.g. their pop rates)."""
        face = np.zeros(self.picture.shape[:2], bool)
        seam = np.zeros(self.picture.shape[:2], bool)
        x0, y0, x1, y1 = self.region
        mask = self.mask[..., 0]
        face[y0:y1, x0:x1] = mask > high
        seam[y0:y1, x0:x1] = (mask > low) & (mask <= high)
        return face, seam

    def follow(self, landmarks: np.ndarray) -> np.ndarray:
        """The picture mesh-warped so the face moves from the source's landmarks to ``landmarks`` [68, 2] (crop
        pixels), the picture's border fixed: uint8 [H, W, 3]."""
        height, width = self.picture.shape[:2]
        coarse_height, coarse_width = self._coarse
        step_x, step_y = width / coarse_width, height / coarse_height

        def coarse(points: np.ndarray) -> np.ndarray:  # picture pixels -> coarse pixels (centres at integers)
            return (points + 0.5) / [step_x, step_y] - 0.5

        grid = sampling_grid(coarse(self.rest), coarse(self.to_picture(landmarks)), self._coarse)  # [h, w, 2]
        coarse_xs, coarse_ys = self._coarse_pixels
        # Displacement in output pixels, upsampled; zero where the mesh does not move (far from the face).
        shift_x = (((grid[..., 0] + 1) * coarse_width - 1) / 2 - coarse_xs) * step_x * self._follow
        shift_y = (((grid[..., 1] + 1) * coarse_height - 1) / 2 - coarse_ys) * step_y * self._follow
        xs, ys = self._pixels
        map_x = cv2.resize(shift_x, (width, height), interpolation=cv2.INTER_LINEAR) + xs
        map_y = cv2.resize(shift_y, (width, height), interpolation=cv2.INTER_LINEAR) + ys
        return cv2.remap(self.picture, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def __call__(self, head: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The whole picture for one frame: ``head`` uint8 [R, R, 3] (the rendered crop at any size R) and the
        frame's landmarks [68, 2] in crop pixels -> uint8 [H, W, 3]."""
        frame = self.follow(landmarks)
        x0, y0, x1, y1 = self.region
        left, top, side = self.box
        scale = side / head.shape[0]  # head pixel u -> picture x = (u + 0.5) * scale - 0.5 + left
        matrix = np.array([[scale, 0, 0.5 * scale - 0.5 + left - x0], [0, scale, 0.5 * scale - 0.5 + top - y0]])
        placed = cv2.warpAffine(head, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        area = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = (area + self.mask * (placed.astype(np.float32) - area)).round().clip(0, 255)
        return frame

SYNTHETIC_TAG = "synthetic: generated by talkinghead (few-shot neural talking head); the face is not real footage"
"""The metadata comment every written animation carries (the visible mark can be turned off, this cannot)."""


def paste_into(picture: np.ndarray, head: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """Composite the generated crop back into the full picture at its crop box with a soft (feathered
    elliptical) mask. picture uint8 [H, W, 3]; head uint8 [S, S, 3]; box (left, top, side)."""
    left, top, side = box
    size = head.shape[0]
    # Affine map crop pixels -> picture pixels.
    scale = side / size
    matrix = np.array([[scale, 0, left], [0, scale, top]], dtype=np.float64)
    height, width = picture.shape[:2]
    warped = cv2.warpAffine(head, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.36), int(size * 0.44)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=size * 0.06)
    mask = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    blended = warped.astype(np.float32) * mask + picture.astype(np.float32) * (1.0 - mask)
    return blended.round().clip(0, 255).astype(np.uint8)


def draw_synthetic_mark(image: np.ndarray) -> np.ndarray:
    """A visible "SYNTHETIC" label in the bottom-left corner (white on a dark band), scaled to the image."""
    image = image.copy()
    height, width = image.shape[:2]
    scale = max(width, height) / 640.0
    font_scale = max(0.3, 0.6 * scale)
    thickness = max(1, round(1.5 * scale))
    text = "SYNTHETIC"
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    pad = max(2, round(4 * scale))
    y1 = height - pad
    y0 = max(0, y1 - text_h - baseline - 2 * pad)
    image[y0:y1, 0:text_w + 2 * pad] = (image[y0:y1, 0:text_w + 2 * pad] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (pad, y1 - baseline - pad // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` resized to ``height`` rows, keeping its aspect ratio (area interpolation)."""
    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def side_by_side(panels: list[np.ndarray | None], height: int) -> np.ndarray:
    """The panels (None ones left out) at ``height`` rows, left to right."""
    return np.concatenate([fit_height(p, height) for p in panels if p is not None], axis=1)
