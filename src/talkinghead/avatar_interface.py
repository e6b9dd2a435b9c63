"""What the per-frame loop needs of an avatar: the `Animatable` Protocol.

`talkinghead.animation` (the loop shared by `animate`, live mode and the app) drives an avatar, and
`talkinghead.inference.Avatar` runs that loop in its own ``animate_frames``. The loop names this Protocol, a room
below both, instead of importing `Avatar` back (which made an import circle); `Avatar` provides every member
(tests/test_house.py checks that each one the loop uses is declared here and present on `Avatar`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from talkinghead.config import Config
from talkinghead.landmarks.detector import LandmarkFn

if TYPE_CHECKING:
    from talkinghead.models.warp_generator import WarpSources


class Animatable(Protocol):
    """The members of `talkinghead.inference.Avatar` that `talkinghead.animation` uses."""

    config: Config
    landmarks: LandmarkFn
    """Detects the driver's landmarks (tracked per driver by the loop)."""
    source_landmarks: np.ndarray
    """[T, 68, 2] float32 in crop pixels; the first is the face at rest."""
    needs_sources: bool
    """The generator renders from the sources (the warp family): the loop plans `warp_sources` per frame."""
    picture: np.ndarray | None
    """The first source's whole picture, uint8 RGB, to paste the head back into (None: not kept)."""
    box: tuple[float, float, float] | None
    """(left, top, side) of the crop in ``picture``."""

    def landmark_image(self, landmarks: np.ndarray) -> np.ndarray: ...

    def warp_sources(self, landmarks: np.ndarray, size: int | None = None) -> WarpSources: ...

    def _generate(self, landmarks: np.ndarray, landmark_images: np.ndarray, sources: WarpSources | None = None,
                  size: int | None = None) -> np.ndarray: ...

    def animate_frames(self, driver: Any, mode: str = "relative", find_best_frame: bool = False,
                       stats: dict | None = None, smooth: bool = True, size: int | None = None) -> Iterator[Any]: ...
