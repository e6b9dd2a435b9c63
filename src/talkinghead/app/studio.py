"""The app's work, without Gradio: previews, personalization, animation and avatars over one shared model, and
what one browser session keeps between clicks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.app.pictures import PREVIEW_SIDE, annotate_picture, fit_within, overlay_landmarks, write_sample_driver
from talkinghead.app.workspace import LimitError, Limits, Workspace

Progress = Callable[[str, int, "int | None"], None]
"""progress(stage, done, total or None): "fine-tuning" steps, then "rendering" frames."""


@dataclass
class Animation:
    """One finished animation."""

    path: Path
    frames: int
    fps: float
    held: int
    seconds: float
    """Wall time of personalization plus rendering."""


@dataclass
class Session:
    """What one browser session keeps between clicks: its latest run folder and avatar."""

    run: Path | None = None
    avatar: object | None = None
    """The `talkinghead.inference.Avatar` of the latest animation (to save it)."""
    description: str = ""


class Studio:
    """The app's work, without Gradio: previews, personalization, animation, avatars (one model for all)."""

    def __init__(self, workspace: Workspace, head=None, device: str = "cpu") -> None:
        self.workspace = workspace
        self.head = head
        """`talkinghead.inference.TalkingHead`, or None: then only saved/uploaded avatars can be animated."""
        self.device = device
        self._model_lock = threading.Lock()  # one personalization or animation at a time on the shared model

    @classmethod
    def from_checkpoint(cls, workspace: Workspace, checkpoint: str | os.PathLike[str] | None,
                        device: str = "cpu", finetune_overrides: Sequence[str] = ()) -> Studio:
        """``finetune_overrides``: ``finetune.FIELD=VALUE`` items, as `TalkingHead.load` takes them."""
        head = None
        if checkpoint is not None:
            from talkinghead.inference import TalkingHead

            head = TalkingHead.load(checkpoint, device=device, finetune_overrides=finetune_overrides)
        elif finetune_overrides:
            raise ValueError("--set changes how pictures are fine-tuned; it needs --checkpoint")
        return cls(workspace, head, device)

    @property
    def limits(self) -> Limits:
        return self.workspace.limits

    def _need_head(self):
        if self.head is None:
            raise ValueError("this app was started without --checkpoint, so it cannot make avatars from "
                             "pictures; pick a saved avatar or upload an .avatar file (or restart the app with "
                             "--checkpoint RUN)")
        return self.head

    def check_sources(self, uploads: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
        uploads = [u for u in (uploads or []) if u]
        if not uploads:
            raise ValueError("upload one or more pictures of the person (or one video of them)")
        if len(uploads) > self.limits.sources:
            raise LimitError(f"{len(uploads)} source files; at most {self.limits.sources} make one avatar")
        return [self.workspace.check_upload(upload, "picture") for upload in uploads]

    # --- previews -------------------------------------------------------------------------------------

    def preview_sources(self, uploads: Sequence[str | os.PathLike[str]]) -> tuple[list[tuple[np.ndarray, str]], str]:
        """For each source: the picture with its detected landmarks and crop box, and the crop the model sees.
        Returns (captioned images, a message listing the pictures without a face)."""
        head = self._need_head()
        items: list[tuple[np.ndarray, str]] = []
        problems: list[str] = []
        for path in self.check_sources(uploads):
            try:
                sources = head.prepare([str(path)], max_video_frames=1)
            except ValueError as error:  # no face: say which picture, keep previewing the others
                problems.append(self.workspace.public(str(error)))
                continue
            source = sources[0]
            items.append((annotate_picture(source.image, source.landmarks, source.box, head.config.model.image_size),
                          f"{path.name}: landmarks and crop"))
            items.append((overlay_landmarks(source.crop, source.landmarks), f"{path.name}: what the model sees"))
        return items, "\n".join(problems)

    def preview_driver(self, upload: str | os.PathLike[str]) -> tuple[np.ndarray, str]:
        """The driver's first frame with its detected landmarks, and a caption (fps, length, face found)."""
        from talkinghead.landmarks import default_landmarks
        from talkinghead.video import VideoReader

        path = self.workspace.check_upload(upload, "video")
        reader = VideoReader(path)
        first = next(iter(reader))
        detect = self.head.landmarks if self.head is not None else default_landmarks()
        points = detect(first, None)
        length = f"{reader.num_frames} frames at {reader.fps:.3g} fps ({reader.num_frames / reader.fps:.1f} s)"
        if points is None:
            return fit_within(first, PREVIEW_SIDE), f"{path.name}: {length}; no face in the first frame"
        return annotate_picture(first, points, None, None), f"{path.name}: {length}; face found"

    def sample_driver(self) -> Path:
        """A driver rendered here by the synthetic renderer (the demo's kind of person): written once, reused."""
        path = self.workspace.samples / "synthetic-driver.mp4"
        with self._model_lock:
            if not path.exists():
                write_sample_driver(path, self.head.config.data if self.head is not None else None)
        return path

    # --- work -----------------------------------------------------------------------------------------

    def make_avatar(self, uploads: Sequence[str | os.PathLike[str]], steps: int = 0,
                    progress: Progress | None = None):
        """An avatar from the uploaded pictures: feed-forward (steps 0) or fine-tuned for ``steps`` updates."""
        head = self._need_head()
        paths = self.check_sources(uploads)
        steps = int(steps)
        if not 0 <= steps <= self.limits.steps:
            raise LimitError(f"{steps} fine-tuning steps; the app allows 0 to {self.limits.steps}")

        def on_step(step: int, total: int, info: dict) -> None:
            if progress is not None:
                progress("fine-tuning", step, total)

        with self._model_lock:
            avatar = head.personalize([str(p) for p in paths], steps=steps, progress=on_step)
        return avatar

    def load_avatar(self, name: str):
        from talkinghead.inference import Avatar

        return Avatar.load(self.workspace.avatar_file(name), device=self.device)

    def animate(self, avatar, driver: str | os.PathLike[str], *, mode: str = "relative",
                side_by_side: bool = False, paste_back: bool = True, progress: Progress | None = None,
                started: float | None = None) -> Animation:
        """Animate ``avatar`` with the uploaded driver into a new run folder (H.264 with the synthetic mark): the
        whole picture with the head pasted back, as `animate` writes by default, or (``paste_back=False``) the
        face crop."""
        from talkinghead.animation import write_animation

        path = self.workspace.check_upload(driver, "video")
        started = time.perf_counter() if started is None else started
        folder = self.workspace.new_run()
        output = folder / "animation.mp4"

        def on_frame(done: int, total: int | None) -> None:
            if progress is not None:
                progress("rendering", done, total)

        try:
            with self._model_lock:
                result = write_animation(avatar, path, output, mode=mode, side_by_side=side_by_side,
                                         crop=not paste_back, progress=on_frame)
        except BaseException:
            self.workspace.discard(folder)
            raise
        return Animation(output, result["frames"], result["fps"], result["held"], time.perf_counter() - started)
