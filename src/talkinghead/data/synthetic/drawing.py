"""Drawing primitives (sub-pixel cv2 fills and lines, shading bands) and the background, eyes and mouth."""

from __future__ import annotations

import logging
import math
from functools import lru_cache

import cv2
import numpy as np

from talkinghead.data.synthetic.identity import MOUTH_INTERIOR, PUPIL, RGB, SCLERA, TEETH, Identity, _hsv, _shade

log = logging.getLogger(__name__)

_SHIFT = 4  # cv2 fractional bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT



def _fix(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, pts: np.ndarray, colour: RGB) -> None:
    cv2.fillPoly(img, [_fix(pts)], colour, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, colour: RGB, width: float, closed: bool = False) -> None:
    cv2.polylines(img, [_fix(pts)], closed, colour, max(1, int(round(width))), cv2.LINE_AA, _SHIFT)


def _disc(img: np.ndarray, centre: np.ndarray, radius: float, colour: RGB) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    cv2.circle(img, c, max(1, int(round(radius * _ONE))), colour, -1, cv2.LINE_AA, _SHIFT)


def _hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _bands(img: np.ndarray, outline: np.ndarray, centre: np.ndarray, colours: tuple, factors: tuple) -> None:
    """Shading: the outline filled with colours[0], then nested copies shrunk towards the lit `centre`."""
    _fill(img, outline, colours[0])
    for colour, f in zip(colours[1:], factors, strict=True):
        _fill(img, centre + f * (outline - centre), colour)


def _composite(img: np.ndarray, clip: np.ndarray, draw, pad: float = 2.0) -> None:
    """Draw `draw(patch, offset)` onto img, but only inside the polygon `clip` (anti-aliased edge)."""
    h, w = img.shape[:2]
    x0 = max(int(math.floor(clip[:, 0].min() - pad)), 0)
    y0 = max(int(math.floor(clip[:, 1].min() - pad)), 0)
    x1 = min(int(math.ceil(clip[:, 0].max() + pad)), w)
    y1 = min(int(math.ceil(clip[:, 1].max() + pad)), h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    roi = img[y0:y1, x0:x1]
    offset = np.array([x0, y0], dtype=np.float64)
    patch = roi.copy()
    draw(patch, offset)
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(clip - offset)], 255, cv2.LINE_AA, _SHIFT)
    m = mask[..., None].astype(np.uint16)
    roi[:] = ((roi.astype(np.uint16) * (255 - m) + patch.astype(np.uint16) * m + 127) // 255).astype(np.uint8)


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _soft_circle_image(size: int, centres: np.ndarray, radii: np.ndarray, colours: list) -> np.ndarray:
    img = np.zeros((size, size, 3), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    weight = np.zeros((size, size, 1), np.float32)
    for c, r, col in zip(centres, radii, colours, strict=True):
        w = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * r * r))[..., None]
        img += w * np.asarray(col, np.float32)
        weight += w
    return img, weight


@lru_cache(maxsize=256)
def _background(ident: Identity, size: int) -> np.ndarray:
    """The identity's background at `size` (cached; the renderer copies it)."""
    c1 = np.asarray(ident.background[0], np.float32)
    c2 = np.asarray(ident.background[1], np.float32)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = np.broadcast_to((1 - t) * c1 + t * c2, (size, size, 3)).copy()
    rng = np.random.default_rng([ident.seed, 0xB6])
    style = ident.background_style
    if style == "wall":
        split = int(size * rng.uniform(0.55, 0.8))
        img[split:] = c2 * 0.8
        img[split - max(1, size // 64): split] = c1 * 1.1
    elif style == "bokeh":
        n = 7
        blobs, weight = _soft_circle_image(
            size, rng.uniform(0, 1, (n, 2)), rng.uniform(0.06, 0.16, n),
            [_hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.5, 1.0)) for _ in range(n)],
        )
        a = np.clip(weight, 0, 1) * 0.7
        img = img * (1 - a) + blobs / np.maximum(weight, 1e-6) * a
    elif style == "window":
        x0, y0 = rng.uniform(0.0, 0.6), rng.uniform(0.0, 0.3)
        x1, y1 = x0 + rng.uniform(0.25, 0.45), y0 + rng.uniform(0.3, 0.5)
        xs, ys = int(x0 * size), int(y0 * size)
        xe, ye = int(x1 * size), int(y1 * size)
        img[ys:ye, xs:xe] = np.minimum(c1 * 1.35 + 40, 255)
        bar = max(1, size // 64)
        img[ys:ye, (xs + xe) // 2: (xs + xe) // 2 + bar] = c2 * 0.7
        img[(ys + ye) // 2: (ys + ye) // 2 + bar, xs:xe] = c2 * 0.7
    # soft vignette
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    img *= (1 - 0.35 * (xx * xx + yy * yy))[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _oval(img: np.ndarray, centre: np.ndarray, rx: float, ry: float, angle: float, colour: RGB) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    axes = (max(1, int(round(rx * _ONE))), max(1, int(round(ry * _ONE))))
    cv2.ellipse(img, c, axes, angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)


def _draw_eye(img: np.ndarray, ident: Identity, lid: np.ndarray, gaze: tuple[float, float], iris_r: float,
              foreshortening: float, width: float) -> None:
    """One eye: sclera, iris, pupil and a highlight clipped to the lid polygon [6, 2]; then the lid lines.

    The iris is an ellipse narrowed by the eye's foreshortening; the gaze moves it along the eye's axis.
    """
    lid_line = _shade(ident.skin, 0.35)
    if abs(_polygon_area(lid)) > 0.6:
        axis = lid[3] - lid[0]
        eye_w = float(np.linalg.norm(axis))
        axis = axis / max(eye_w, 1e-6)
        perp = np.array([-axis[1], axis[0]])
        centre = lid.mean(0) + axis * gaze[0] * 0.2 * eye_w + perp * gaze[1] * 0.1 * eye_w
        angle = math.degrees(math.atan2(axis[1], axis[0]))

        def draw(patch: np.ndarray, off: np.ndarray) -> None:
            patch[:] = SCLERA
            c = centre - off
            _oval(patch, c, iris_r * foreshortening, iris_r, angle, ident.eye_colour)
            _oval(patch, c, iris_r * 0.48 * foreshortening, iris_r * 0.48, angle, PUPIL)
            _disc(patch, c + np.array([-0.35, -0.4]) * iris_r, max(iris_r * 0.2, 0.5), (250, 250, 250))

        _composite(img, lid, draw)
    _line(img, lid[[0, 1, 2, 3]], lid_line, width * 0.9)
    _line(img, lid[[3, 4, 5, 0]], _shade(ident.skin, 0.78), width * 0.5)


def _draw_mouth(img: np.ndarray, ident: Identity, pts: np.ndarray, unit: float, width: float) -> None:
    outer, inner = pts[48:60], pts[60:68]
    upper = np.concatenate([outer[0:7], inner[[4, 3, 2, 1, 0]]])
    lower = np.concatenate([outer[[6, 7, 8, 9, 10, 11, 0]], inner[[0, 7, 6, 5, 4]]])
    _fill(img, upper, _shade(ident.lips, 0.86))
    _fill(img, lower, ident.lips)
    opening = abs(_polygon_area(inner))
    if opening > 0.8:
        gap = np.linalg.norm(inner[6] - inner[2])
        down = (inner[6] - inner[2]) / max(gap, 1e-6)

        def draw(patch: np.ndarray, off: np.ndarray) -> None:
            patch[:] = MOUTH_INTERIOR
            top = inner[[0, 1, 2, 3, 4]] - off
            teeth_h = min(0.35 * gap, 0.07 * unit)
            _fill(patch, np.concatenate([top, top[::-1] + down * teeth_h]), TEETH)
            bottom = inner[[4, 5, 6, 7, 0]] - off
            _fill(patch, np.concatenate([bottom, bottom[::-1] - down * 0.18 * gap]), _shade(TEETH, 0.9))

        _composite(img, inner, draw)
    _line(img, inner[[0, 1, 2, 3, 4]], _shade(ident.lips, 0.45), width * 0.7)

