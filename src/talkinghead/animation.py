"""The one per-frame animation loop, and writing an animation to a video file.

    animator = FrameAnimator(avatar, mode="relative", fps=reader.fps, source="talk.mp4")
    for frame in reader:
        result = animator(frame)           # AnimationFrame: the generated image, what made it, held or not

One driver frame in, one avatar frame out: landmarks (tracked: `landmarks.driver_tracker`) -> One-Euro smoothing
(`landmarks.LandmarkSmoother`) -> retargeting onto the avatar's own face (`landmarks.retarget`) -> landmark image
-> `Avatar.render` (G with the avatar's ψ; the warp family also with its N nearest sources and their mesh grids).
A frame without a face holds the last landmarks (the avatar at rest before the first
face). `Avatar.animate_frames` (hence `talkinghead animate`, the app and the evaluation) and `talkinghead live`
both run it, pipelined (`FrameAnimator.stream`: decoding, landmarks, planning (retargeting, the landmark image,
the warp family's mesh grids) and G in overlapping threads, the encoder in the caller's); `write_animation`
writes its frames as an H.264 video with the driver's audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkinghead import compose
from talkinghead.avatar_interface import Animatable
from talkinghead.compose import SYNTHETIC_TAG
from talkinghead.landmarks.detector import driver_tracker
from talkinghead.landmarks.lip_normalization import DEFAULT as LIP_NORMALIZATION
from talkinghead.landmarks.retarget import MODES, Retargeter
from talkinghead.landmarks.smoothing import LandmarkSmoother
from talkinghead.metrics.temporal import PopCounter
from talkinghead.pipeline import pipeline

if TYPE_CHECKING:
    from talkinghead.models.warp_generator import WarpSources

log = logging.getLogger(__name__)

DEFAULT_CROP_SIZE = 256
"""The side of the face crop `write_animation` writes with ``crop=True`` (``animate --crop --size N``)."""


class NoFaceInDriver(ValueError):
    """No frame of a driver had a face, so there was no motion to follow. The message names the driver."""


@dataclass
class AnimationFrame:
    """One animated frame with what made it (for side-by-side views and paste-back)."""

    index: int
    image: np.ndarray
    """Generated frame, uint8 RGB [R, R, 3] (R: the animator's size, default the model's S)."""
    landmark_image: np.ndarray
    """The retargeted landmark image fed to G, uint8 RGB [S, S, 3]."""
    landmarks: np.ndarray
    """The retargeted landmarks [68, 2] in the avatar's crop pixels."""
    driver: np.ndarray | None
    """The driver frame, uint8 RGB (None when driven by landmarks only)."""
    held: bool
    """True when no face was found in this driver frame and the last good landmarks were used."""
    driver_landmarks: np.ndarray | None = None
    """The driver frame's own landmarks [68, 2] in its pixels (tracked, smoothed; None when held)."""


@dataclass
class PlannedFrame:
    """A frame with everything before G done (`FrameAnimator.plan`), waiting for `FrameAnimator.render`."""

    index: int
    landmarks: np.ndarray
    """The retargeted landmarks [68, 2] in the avatar's crop pixels."""
    landmark_image: np.ndarray
    """uint8 RGB [S, S, 3]."""
    sources: WarpSources | None
    """The warp family's N nearest sources with their mesh grids (None for the paper family)."""
    driver: np.ndarray | None
    held: bool
    driver_landmarks: np.ndarray | None = None
    """The driver frame's own landmarks [68, 2] in its pixels (None when held)."""


class FrameAnimator:
    """Track -> smooth -> retarget -> render, one driver frame at a time, for one driver.

    mode: "relative" (the driver's motion on the avatar's own face shape) or "absolute" (the paper: the driver's
    landmarks aligned to the source's position and scale). reference: the driver landmarks that stand for the
    source's expression (default: the first face seen). fps: the driver's nominal rate for smoothing; live mode
    passes each frame's capture time instead (``animator(frame, at=seconds)``). ``frames`` and ``held`` count
    the frames driven and those that held the last landmarks. size: the rendered frames' side (default: the
    model's; the warp family renders there from the avatar's full-resolution crops, `Avatar.detail_images`).
    lip_normalization: in relative mode, measure the driver's motion between closed mouths, so that an avatar whose
    source shows the mouth open follows the driver's opening (`landmarks.lip_normalization`).
    """

    def __init__(self, avatar: Animatable, mode: str = "relative", *, smooth: bool = True, fps: float = 25.0,
                 source: str = "<driver>", reference: np.ndarray | None = None, size: int | None = None,
                 lip_normalization: bool = LIP_NORMALIZATION) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.avatar = avatar
        self.mode = mode
        self.source = source
        self.track = driver_tracker(avatar.landmarks, source)
        self.smoother = LandmarkSmoother(fps) if smooth else None
        self.reference = reference
        self.size = size
        self.lip_normalization = lip_normalization
        self.frames = 0
        self.held = 0
        self._retargeter: Retargeter | None = None
        self._last: np.ndarray | None = None

    def locate(self, frame: np.ndarray, at: float | None = None) -> np.ndarray | None:
        """The driver frame's landmarks [68, 2] (tracked, smoothed), or None when it has no face."""
        points = self.track(frame)
        if points is not None and self.smoother is not None:
            points = self.smoother(points, at)
        return points

    def drive(self, points: np.ndarray | None, frame: np.ndarray | None = None) -> AnimationFrame:
        """Render the avatar following driver landmarks [68, 2] (None: hold the last ones)."""
        return self.render(self.plan(points, frame))

    def plan(self, points: np.ndarray | None, frame: np.ndarray | None = None) -> PlannedFrame:
        """Everything before G for driver landmarks [68, 2] (None: hold the last ones): retargeting, the landmark
        image and, for the warp family, the nearest sources with their mesh grids."""
        index = self.frames
        self.frames += 1
        held = points is None
        driver_points = points
        if held:
            self.held += 1
            points = self._last
        source = self.avatar.source_landmarks[0]
        if points is None:
            target = source  # no face seen yet: the avatar at rest
        else:
            self._last = points
            if self._retargeter is None:
                reference = self.reference if self.reference is not None else points
                self._retargeter = Retargeter(source, reference, self.mode, self.lip_normalization)
            target = self._retargeter(points)
        drawing = self.avatar.landmark_image(target)
        sources = self.avatar.warp_sources(target[None], self.size) if self.avatar.needs_sources else None
        return PlannedFrame(index, target, drawing, sources, frame, held, driver_points)

    def render(self, planned: PlannedFrame) -> AnimationFrame:
        """G on a planned frame -> the animated frame (what ``Avatar.render`` gives for its landmarks)."""
        image = self.avatar._generate(np.asarray(planned.landmarks, np.float32)[None], planned.landmark_image[None],
                                      planned.sources, self.size)[0]
        return AnimationFrame(planned.index, image, planned.landmark_image, planned.landmarks, planned.driver,
                              planned.held, planned.driver_landmarks)

    def __call__(self, frame: np.ndarray, at: float | None = None) -> AnimationFrame:
        return self.drive(self.locate(frame, at), frame)

    def stream(self, frames: Iterable[np.ndarray], depth: int = 1) -> Iterator[AnimationFrame]:
        """``self(frame)`` for each frame, in order and with identical results, pipelined: the frames are read
        (decoded), located (tracked, smoothed), planned (retargeted, drawn, their sources' grids) and rendered (G)
        in four overlapping threads with at most ``depth`` frames between two of them (`talkinghead.pipeline`),
        so memory stays flat."""
        return pipeline(frames, [lambda frame: (frame, self.locate(frame)),
                                 lambda located: self.plan(located[1], located[0]),
                                 self.render], depth=depth, name="talkinghead-animate")

    def finish(self) -> None:
        """After the driver's last frame: `NoFaceInDriver` when no frame had a face, else a warning counting the
        frames that held the last landmarks."""
        if self.frames and self.held == self.frames:
            raise NoFaceInDriver(f"{self.source}: no face found in any of its {self.frames} frames; drive with "
                                 "a video that shows one clearly visible, roughly frontal face")
        if self.held:
            log.warning("%d of %d driver frames had no face; the last good landmarks were held", self.held,
                        self.frames)


def write_animation(avatar: Animatable, driver: str | Path, output: str | Path, *, mode: str = "relative",
                    find_best_frame: bool = False, side_by_side: bool = False, crop: bool = False,
                    size: int = DEFAULT_CROP_SIZE, max_side: int = compose.MAX_PICTURE_SIDE, mark: bool = True,
                    overwrite: bool = False, landmarks: np.ndarray | None = None,
                    progress: Callable[[int, int | None], None] | None = None, measure_pops: bool = False,
                    lip_normalization: bool = LIP_NORMALIZATION) -> dict:
    """Animate ``avatar`` with the driver video and write an H.264 video at the driver's fps with its audio.

    By default the whole first source picture (its long side capped at ``max_side``), the head rendered at the
    crop's own size in it and pasted back, the rest of the picture following the head (`compose.WholePicture`);
    an avatar without its picture (an old file, or dataset crops) writes the crop, with a warning. crop: the face
    crop alone, ``size`` x ``size`` (rendered at that size, `Avatar.detail_images`). side_by_side: driver |
    landmark image | result. mark: a visible "synthetic"
    label (the metadata tag is always written). Returns {"frames", "held", "fps", "output", "size"}; refuses an
    existing output unless ``overwrite``. landmarks: the driver's landmarks [T, 68, 2] in its frames' pixels when they
    are known (e.g. a synthetic driver), so no detection runs; the video still gives the frames, fps and audio.
    A driver in which no frame has a face raises `NoFaceInDriver` and writes nothing.
    lip_normalization: see `FrameAnimator`. measure_pops: also return ``"stability"``, the pop rate of the generated
    frames against the driver's own face
    crop (`driver_crop`; `metrics.temporal`), so a user can check any animation for popping.
    """
    from talkinghead.video import VideoReader, VideoWriter

    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to replace it")
    whole = None
    if not crop and (avatar.picture is None or avatar.box is None):
        log.warning("this avatar holds no source picture to paste the head back into; writing the %d px face crop",
                    size)
    elif not crop:
        whole = compose.WholePicture(avatar.picture, avatar.box, avatar.source_landmarks[0],
                                     avatar.config.model.image_size, max_side)
        size = whole.head_size
    reader = VideoReader(driver)
    total = len(reader) or None
    stats: dict = {}
    pops = PopCounter() if measure_pops else None
    metadata = {"comment": SYNTHETIC_TAG, "synthetic": "true", "generator": "talkinghead"}
    audio = driver if reader.has_audio else None
    with VideoWriter(output, fps=reader.fps, audio_from=audio, metadata=metadata) as writer:
        known = iter(reader) if landmarks is not None else None
        source = driver if landmarks is None else np.asarray(landmarks, dtype=np.float32)
        for frame in avatar.animate_frames(source, mode=mode, find_best_frame=find_best_frame, stats=stats,
                                           size=size, lip_normalization=lip_normalization):
            if known is not None:
                frame.driver = next(known, None)
            image = frame.image
            if pops is not None:
                reference = driver_crop(frame, image.shape[0])
                if reference is None:
                    pops.reset()  # no pair spans a frame without a driver face
                else:
                    pops.add(image, reference)
            if whole is not None:
                image = whole(image, frame.landmarks)
            if side_by_side:
                image = compose.side_by_side([frame.driver, frame.landmark_image, image], image.shape[0])
            if mark:
                image = compose.draw_synthetic_mark(image)
            writer.write(image)
            if progress is not None:
                progress(frame.index + 1, total)
    result = {"frames": stats.get("frames", 0), "held": stats.get("held", 0), "fps": reader.fps, "output": str(output),
              "size": list(whole.picture.shape[1::-1]) if whole is not None else [size, size]}
    if pops is not None:
        result["stability"] = pops.summary()
    return result


def driver_crop(frame: AnimationFrame, size: int) -> np.ndarray | None:
    """The driver frame's face, cut by the project's one crop policy (`landmarks.crop`) from its own landmarks and
    resized to ``size``: what the animation's change between frames is compared with. None when the frame has no
    driver picture or no face of its own (held)."""
    from talkinghead.landmarks.crop import crop_face

    if frame.driver is None or frame.driver_landmarks is None:
        return None
    return crop_face(frame.driver, frame.driver_landmarks, size)[0]


__all__ = ["DEFAULT_CROP_SIZE", "AnimationFrame", "FrameAnimator", "NoFaceInDriver", "PlannedFrame", "driver_crop",
           "write_animation"]
