"""The local web app (`talkinghead app`): animate a portrait in the browser, without the command line.

Two layers, so that the logic is tested without a browser:

* `Workspace` and `Studio` (no Gradio): the app's one temporary folder (uploads, previews, results, saved
  avatars; removed on exit), the limits (upload size, video length, sources, fine-tuning steps) with messages
  that say what to do, the confinement rule (a path that comes from a client is used only when it resolves
  inside the workspace), and the work itself: landmark and crop previews, personalization and animation
  with progress callbacks, saving and reusing avatars, a synthetic sample driver.
* `build_ui(studio)` and `AppServer`: the Gradio page over them. Gradio is the optional extra
  ``pip install -e ".[app]"``; it is imported only here, so the rest of `talkinghead` works without it.

The server binds 127.0.0.1 unless told otherwise; Gradio's analytics and version check are off, and its upload
cache is the workspace (``GRADIO_TEMP_DIR``), so uploads and results never leave that folder.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7860
MB = 1 << 20
INSTALL_HINT = 'pip install -e ".[app]"'
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}
AVATAR_SUFFIXES = {".avatar", ".safetensors"}
SAMPLE_DRIVER = (0, 7, 75)
"""(identity seed, motion seed, frames) of the sample driver: a synthetic person rendered on demand, 3 s at 25 fps."""
PREVIEW_SIDE = 384
"""Longest side of the preview pictures (landmarks and crop box drawn on the upload)."""

Progress = Callable[[str, int, "int | None"], None]
"""progress(stage, done, total or None): "fine-tuning" steps, then "rendering" frames."""


class AppUnavailable(ImportError):
    """The web app's optional dependencies are not installed; the message says what to install."""


class LimitError(ValueError):
    """An upload or a setting is over the app's limits; the message names the file and the limit."""


class OutsideWorkspaceError(ValueError):
    """A client asked for a path outside the app's workspace; it is never read or written."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the app (set with `talkinghead app --max-upload-mb ...`)."""

    upload_mb: float = 50.0
    """Largest upload, in MB of 2^20 bytes (as the browser's message counts them)."""
    video_seconds: float = 60.0
    """Longest driver (or source) video, in seconds."""
    sources: int = 16
    """Most source pictures for one avatar."""
    steps: int = 400
    """Most fine-tuning steps."""

    def __post_init__(self) -> None:
        for name in ("upload_mb", "video_seconds", "sources", "steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"app limit {name} must be positive, got {getattr(self, name)!r}")


class Workspace:
    """The app's one temporary folder: Gradio's uploads, the runs' results, the saved avatars, the sample driver.

    Every path that comes from a client goes through `confine` (resolved, symlinks followed, must lie inside
    ``root``); saved avatars are chosen by name from `saved_avatars`, never by path. `close` removes it all.
    """

    def __init__(self, limits: Limits | None = None, parent: str | os.PathLike[str] | None = None) -> None:
        self.limits = limits or Limits()
        self.root = Path(tempfile.mkdtemp(prefix="talkinghead-app-", dir=parent)).resolve()
        self.runs = self.root / "runs"
        self.avatars = self.root / "avatars"
        self.samples = self.root / "samples"
        for folder in (self.runs, self.avatars, self.samples):
            folder.mkdir()
        self._lock = threading.Lock()

    # --- confinement and limits -----------------------------------------------------------------------

    def confine(self, path: str | os.PathLike[str] | None) -> Path:
        """``path`` resolved (symlinks followed) when it lies inside the workspace, else `OutsideWorkspaceError`."""
        if path is None or str(path) == "":
            raise ValueError("no file given")
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise OutsideWorkspaceError(f"refused {Path(path).name!r}: the app reads only files uploaded to it "
                                        "and writes only in its own temporary folder")
        return resolved

    def check_upload(self, path: str | os.PathLike[str] | None, kind: str) -> Path:
        """A client's file, confined and checked against the limits. kind: "picture" (image or video), "video"
        or "avatar". Returns the resolved path."""
        resolved = self.confine(path)
        name = resolved.name
        if not resolved.is_file():
            raise FileNotFoundError(f"{name} is not there any more; upload it again")
        megabytes = resolved.stat().st_size / MB
        if megabytes > self.limits.upload_mb:
            raise LimitError(f"{name} is {megabytes:.1f} MB; uploads are limited to {self.limits.upload_mb:g} MB "
                             "(start the app with a larger --max-upload-mb to allow it)")
        suffix = resolved.suffix.lower()
        allowed = {"picture": IMAGE_SUFFIXES | VIDEO_SUFFIXES, "video": VIDEO_SUFFIXES,
                   "avatar": AVATAR_SUFFIXES}[kind]
        if suffix not in allowed:
            raise ValueError(f"{name}: a {suffix or 'suffix-less'} file is not a {kind} this app reads "
                             f"(use one of {' '.join(sorted(allowed))})")
        if suffix in VIDEO_SUFFIXES:
            self.check_video_length(resolved)
        return resolved

    def check_video_length(self, path: Path) -> float:
        """The video's length in seconds; `LimitError` when it is over ``limits.video_seconds``."""
        from talkinghead.video import VideoReader

        reader = VideoReader(path)
        seconds = reader.num_frames / reader.fps
        if seconds > self.limits.video_seconds:
            raise LimitError(f"{path.name} is {seconds:.1f} s long; videos are limited to "
                             f"{self.limits.video_seconds:g} s (trim it, or start the app with a larger "
                             "--max-video-seconds)")
        return seconds

    def public(self, message: str) -> str:
        """A message with the workspace's folders removed from file names (clients see only their file names)."""
        return re.sub(re.escape(str(self.root)) + r"/(?:[^/\s'\"]+/)*", "", message)

    # --- runs -----------------------------------------------------------------------------------------

    def new_run(self) -> Path:
        """A fresh folder for one animation's files."""
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.runs))

    def discard(self, folder: Path | None) -> None:
        """Remove a run folder (a previous result of the same browser session, or a closed session's)."""
        if folder is None:
            return
        folder = self.confine(folder)
        if folder.parent != self.runs:
            raise OutsideWorkspaceError(f"refused to remove {folder.name!r}: not a run folder")
        shutil.rmtree(folder, ignore_errors=True)

    # --- avatars --------------------------------------------------------------------------------------

    def saved_avatars(self) -> list[str]:
        """Names of the avatars saved (or uploaded) while the app runs."""
        return sorted(path.stem for path in self.avatars.glob("*.avatar"))

    def avatar_file(self, name: str) -> Path:
        """The file of a saved avatar, chosen by its name (one of `saved_avatars`)."""
        if name not in self.saved_avatars():
            raise ValueError(f"no saved avatar named {name!r}; save one first or upload an .avatar file")
        return self.avatars / f"{name}.avatar"

    def avatar_name(self, wanted: str) -> str:
        """A safe file name from what the user typed: letters, digits, '-' and '_' (at most 64)."""
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", wanted or "").strip("-")[:64]
        return name or "avatar"

    def save_avatar(self, avatar, wanted: str) -> Path:
        """Write the avatar as ``avatars/<name>.avatar`` (replacing one of the same name); returns the path."""
        path = self.avatars / f"{self.avatar_name(wanted)}.avatar"
        with self._lock:
            avatar.save(path)
        return path

    def import_avatar(self, upload: str | os.PathLike[str]) -> str:
        """An uploaded avatar file, checked (kind, readable) and copied among the saved avatars; returns its name."""
        from talkinghead.checkpoint import load_checkpoint
        from talkinghead.inference import AVATAR_KIND, _check_kind

        path = self.check_upload(upload, "avatar")
        _check_kind(path.name, load_checkpoint(path).kind, AVATAR_KIND)
        name = self.avatar_name(path.stem)
        with self._lock:
            shutil.copyfile(path, self.avatars / f"{name}.avatar")
        return name

    def close(self) -> None:
        """Remove the workspace and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)


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
        from talkinghead.inference import default_landmarks
        from talkinghead.video import VideoReader

        path = self.workspace.check_upload(upload, "video")
        reader = VideoReader(path)
        first = next(iter(reader))
        detect = self.head.landmarks if self.head is not None else default_landmarks()
        points = detect(first, None)
        length = f"{reader.num_frames} frames at {reader.fps:.3g} fps ({reader.num_frames / reader.fps:.1f} s)"
        if points is None:
            return _fit(first, PREVIEW_SIDE), f"{path.name}: {length}; no face in the first frame"
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
                side_by_side: bool = False, paste_back: bool = False, progress: Progress | None = None,
                started: float | None = None) -> Animation:
        """Animate ``avatar`` with the uploaded driver into a new run folder (H.264 with the synthetic mark)."""
        from talkinghead.inference import write_animation

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
                                         paste_back=paste_back, progress=on_frame)
        except BaseException:
            self.workspace.discard(folder)
            raise
        return Animation(output, result["frames"], result["fps"], result["held"], time.perf_counter() - started)


# --- pictures for the previews ----------------------------------------------------------------------------


def annotate_picture(image: np.ndarray, points: np.ndarray, box: tuple[float, float, float] | None,
                     crop_size: int | None) -> np.ndarray:
    """The picture (scaled to at most `PREVIEW_SIDE`) with the landmarks as dots and the crop box as a square.
    ``points`` are in crop pixels when ``box`` and ``crop_size`` are given (a prepared source), else in the
    picture's pixels."""
    import cv2

    points = np.asarray(points, dtype=np.float64)
    if box is not None and crop_size is not None:
        left, top, side = box
        points = points * (side / crop_size) + np.array([left, top])
    scale = min(1.0, PREVIEW_SIDE / max(image.shape[:2]))
    shown = _fit(image, PREVIEW_SIDE).copy()
    radius = max(2, round(max(shown.shape[:2]) / 150))
    for x, y in points * scale:
        cv2.circle(shown, (round(x), round(y)), radius, (0, 255, 0), -1, cv2.LINE_AA)
    if box is not None:
        left, top, side = (value * scale for value in box)
        cv2.rectangle(shown, (round(left), round(top)), (round(left + side), round(top + side)), (255, 200, 0), 2)
    return shown


def overlay_landmarks(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The crop with its landmark image (what G is driven by) drawn over it."""
    from talkinghead.landmarks import landmark_image

    drawing = landmark_image(points, crop.shape[0])
    lines = drawing.max(axis=2, keepdims=True) > 0
    return np.where(lines, drawing, crop).astype(np.uint8)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    scale = side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_sample_driver(path: str | os.PathLike[str], data=None, size: int = 256) -> Path:
    """Render the sample driver: a synthetic person (`SyntheticVideo`) talking for 3 s, framed by the crop policy
    (``data``: a `DataConfig`, default settings when None), H.264 at 25 fps."""
    from talkinghead.config import DataConfig
    from talkinghead.data.prepare import crop_clip
    from talkinghead.data.synthetic import SyntheticVideo
    from talkinghead.video import VideoWriter

    data = data or DataConfig()
    identity_seed, motion_seed, frames = SAMPLE_DRIVER
    images, points, _ = SyntheticVideo(identity_seed, motion_seed, frames).render(size)
    cropped, _, _ = crop_clip(images, points, size, 25.0, data.crop_scale, data.crop_lift)
    with VideoWriter(path, fps=25.0, metadata={"comment": "synthetic person rendered by talkinghead"}) as writer:
        for frame in cropped:
            writer.write(frame)
    return Path(path)


# --- the Gradio page ----------------------------------------------------------------------------------------


def _gradio():
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check: the app works offline
    try:
        import gradio
    except ImportError as error:
        raise AppUnavailable(f"the web app needs Gradio, an optional extra: {INSTALL_HINT} ({error})") from error
    return gradio


def build_ui(studio: Studio):
    """The page: who (pictures or a saved avatar), the driver, options, the result; returns a `gradio.Blocks`.
    The workspace must be Gradio's upload folder before this is called (`AppServer` does it)."""
    gr = _gradio()
    limits = studio.limits
    workspace = studio.workspace
    has_model = studio.head is not None

    def user_error(error: Exception):
        return gr.Error(workspace.public(str(error)), print_exception=False)

    def forget(session: Session | None) -> None:
        if session is not None and session.run is not None:
            workspace.discard(session.run)

    def refuse(error: Exception) -> str:
        """An upload that cannot be used: a notice now, and the reason kept beside the cleared upload."""
        message = workspace.public(str(error))
        gr.Warning(message)
        return f"**Refused:** {message}"

    def on_sources(files):
        if not files:
            return gr.update(), [], ""
        try:
            items, problems = studio.preview_sources(files)
        except (ValueError, OSError) as error:
            return None, [], refuse(error)
        return gr.update(), items, (f"**No face found:**\n\n{problems}" if problems else "")

    def on_driver(video):
        if not video:
            return gr.update(), None, ""
        try:
            image, caption = studio.preview_driver(video)
        except (ValueError, OSError, RuntimeError) as error:
            return None, None, refuse(error)
        return gr.update(), image, caption

    def on_sample():
        return str(studio.sample_driver())

    def on_avatar_upload(file):
        if not file:
            return gr.update(), gr.update()
        try:
            name = workspace.import_avatar(file)
        except (ValueError, OSError, RuntimeError) as error:
            raise user_error(error) from error
        return gr.update(choices=workspace.saved_avatars(), value=name), gr.update(value="saved avatar")

    def on_animate(session, who, files, saved, personalization, steps, driver, mode, side, paste,
                   progress=gr.Progress()):
        session = session or Session()
        started = time.perf_counter()

        def report(stage: str, done: int, total: int | None) -> None:
            progress((done, total), desc=stage, unit="steps" if stage == "fine-tuning" else "frames")

        try:
            if not driver:
                raise ValueError("upload a driving video (or use the sample driver)")
            workspace.check_upload(driver, "video")
            if who == "saved avatar":
                if not saved:
                    raise ValueError("pick a saved avatar (or upload an .avatar file), or choose 'pictures'")
                avatar = studio.load_avatar(saved)
                description = f"saved avatar {saved!r}"
            else:
                fine_tuned = personalization == "fine-tuned"
                progress(0, desc="finding the face" + (" and fine-tuning" if fine_tuned else ""))
                avatar = studio.make_avatar(files, steps=int(steps) if fine_tuned else 0, progress=report)
                info = avatar.info
                description = (f"{info['mode']} avatar from {info['shots']} picture(s)"
                               + (f", {info['steps']} steps" if info["mode"] == "fine-tuned" else ""))
            result = studio.animate(avatar, driver, mode=mode, side_by_side=side, paste_back=paste,
                                    progress=report, started=started)
        except (ValueError, OSError, RuntimeError) as error:
            raise user_error(error) from error
        forget(session)
        session = Session(run=result.path.parent, avatar=avatar, description=description)
        held = f"; {result.held} frames without a face held the last landmarks" if result.held else ""
        status = (f"**Done** in {result.seconds:.1f} s: {result.frames} frames at {result.fps:.3g} fps, "
                  f"{mode} motion, {description}{held}. Play it above; download it with the button on the video "
                  "or the file below.")
        return session, str(result.path), str(result.path), status

    def on_save(session, name):
        if session is None or session.avatar is None:
            raise gr.Error("animate first: the avatar of the latest animation is the one saved",
                           print_exception=False)
        path = workspace.save_avatar(session.avatar, name)
        return (str(path), gr.update(choices=workspace.saved_avatars(), value=path.stem),
                f"Saved avatar **{path.stem}** ({session.description}); pick it under *saved avatar* to reuse it, "
                "and download the file to keep it after the app stops.")

    note = ("" if has_model else "**Started without `--checkpoint`:** only saved or uploaded avatars can be "
            "animated. ")
    with gr.Blocks(title="talkinghead", analytics_enabled=False) as ui:
        session = gr.State(None, delete_callback=forget)
        gr.Markdown(
            "# talkinghead: animate a portrait\n"
            f"{note}Uploads up to {limits.upload_mb:g} MB, videos up to {limits.video_seconds:g} s, "
            f"up to {limits.sources} pictures. Results carry a visible *synthetic* mark. Animate only people who "
            "consented, never to deceive. Files live in a temporary folder removed when the app stops.")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### 1. Who")
                who = gr.Radio(["pictures", "saved avatar"], value="pictures" if has_model else "saved avatar",
                               label="Animate", elem_id="who")
                sources = gr.File(file_count="multiple", file_types=sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES),
                                  label="Pictures of one person (or one video of them)", elem_id="sources",
                                  interactive=has_model)
                personalization = gr.Radio(["feed-forward", "fine-tuned"], value="feed-forward",
                                           label="Personalization", elem_id="personalization")
                steps = gr.Slider(1, limits.steps, value=min(40, limits.steps), step=1,
                                  label="Fine-tuning steps", elem_id="steps")
                gallery = gr.Gallery(label="Detected landmarks and crop", columns=2, height=320,
                                     elem_id="source-preview")
                source_message = gr.Markdown(elem_id="source-message")
                saved = gr.Dropdown(workspace.saved_avatars(), value=None, label="Saved avatar",
                                    elem_id="saved-avatars")
                avatar_upload = gr.File(file_types=sorted(AVATAR_SUFFIXES), label="Or upload an .avatar file",
                                        elem_id="avatar-upload")
            with gr.Column():
                gr.Markdown("### 2. Motion")
                driver = gr.Video(sources=["upload"], label="Driving video", elem_id="driver")
                sample = gr.Button("Use a sample driver (a synthetic person rendered here)", elem_id="sample")
                driver_preview = gr.Image(label="Driver: first frame and landmarks", interactive=False,
                                          type="numpy", elem_id="driver-preview", height=240)
                driver_message = gr.Markdown(elem_id="driver-message")
                mode = gr.Radio(["relative", "absolute"], value="relative", elem_id="mode",
                                label="Motion: relative = the driver's motion on the portrait's own face shape; "
                                      "absolute = the driver's landmarks (the paper)")
                side = gr.Checkbox(label="Side by side (driver | landmarks | result)", elem_id="side-by-side")
                paste = gr.Checkbox(label="Paste the head back into the full picture", elem_id="paste-back")
            with gr.Column():
                gr.Markdown("### 3. Result")
                run = gr.Button("Animate", variant="primary", elem_id="animate")
                result = gr.Video(label="Result", interactive=False, elem_id="result", buttons=["download"])
                status = gr.Markdown(elem_id="status")
                result_file = gr.File(label="Download the video", interactive=False, elem_id="result-file")
                avatar_name = gr.Textbox("my-avatar", label="Avatar name", elem_id="avatar-name")
                save = gr.Button("Save this avatar", elem_id="save-avatar")
                avatar_file = gr.File(label="Avatar file (download it to keep it)", interactive=False,
                                      elem_id="avatar-file")
                save_message = gr.Markdown(elem_id="save-message")

        private = {"api_visibility": "private"}
        # Everything that runs the model or the landmark detector, one at a time: they share the model (and dlib's
        # detector) and two CPU-bound jobs at once only slow each other down.
        model = {**private, "concurrency_id": "model", "concurrency_limit": 1}
        # Previews follow what the user does (upload, clear), not value changes: clearing a refused upload must
        # not also clear the reason shown for it.
        sources.upload(on_sources, sources, [sources, gallery, source_message], **model)
        sources.clear(lambda: ([], ""), None, [gallery, source_message], **private)
        driver.upload(on_driver, driver, [driver, driver_preview, driver_message], **model)
        driver.clear(lambda: (None, ""), None, [driver_preview, driver_message], **private)
        sample.click(on_sample, None, driver, **model).then(
            on_driver, driver, [driver, driver_preview, driver_message], **model)
        avatar_upload.upload(on_avatar_upload, avatar_upload, [saved, who], **private)
        run.click(on_animate, [session, who, sources, saved, personalization, steps, driver, mode, side, paste],
                  [session, result, result_file, status], **model)
        save.click(on_save, [session, avatar_name], [avatar_file, saved, save_message], **private)
    return ui


class AppServer:
    """The app on ``host:port``: a workspace, the model, the page. `start` returns the URL; `close` stops the
    server and removes the workspace. Use as a context manager, or `serve_forever` for the command."""

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None, host: str = LOOPBACK,
                 port: int = DEFAULT_PORT, limits: Limits | None = None, device: str = "cpu",
                 head=None, finetune_overrides: Sequence[str] = ()) -> None:
        self.host = host
        self.finetune_overrides = list(finetune_overrides)
        self.port = port
        self.limits = limits or Limits()
        self.checkpoint = checkpoint
        self.device = device
        self._head = head
        self.workspace: Workspace | None = None
        self.ui = None
        self.url: str | None = None
        self._saved_temp_dir: str | None = None
        self._temp_dir_set = False

    def start(self) -> str:
        _gradio()  # fail before any work when the extra is missing
        logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's requests to itself are not news
        if not _is_loopback(self.host):
            log.warning("listening on %s: anyone who can reach this machine can use the app and upload files; "
                        "the default, %s, keeps it to this computer", self.host, LOOPBACK)
        self.workspace = Workspace(self.limits)
        try:
            studio = (Studio(self.workspace, self._head, self.device) if self._head is not None
                      else Studio.from_checkpoint(self.workspace, self.checkpoint, self.device,
                                                  self.finetune_overrides))
            self._saved_temp_dir = os.environ.get("GRADIO_TEMP_DIR")
            os.environ["GRADIO_TEMP_DIR"] = str(self.workspace.root)  # Gradio's uploads land in the workspace
            self._temp_dir_set = True
            self.ui = build_ui(studio)
            self.ui.queue(default_concurrency_limit=1)
            _, url, _ = self.ui.launch(server_name=self.host, server_port=self.port, prevent_thread_lock=True,
                                       max_file_size=int(self.limits.upload_mb * MB), share=False,
                                       ssr_mode=False, quiet=True, show_error=True, inbrowser=False,
                                       allowed_paths=[], footer_links=["gradio"], mcp_server=False)
        except BaseException:
            self.close()
            raise
        self.url = url
        return url

    def serve_forever(self) -> None:
        """Start, print the URL, run until Ctrl-C (or SIGTERM), then clean up."""
        import signal

        def stop(signum, frame) -> None:
            raise KeyboardInterrupt

        url = self.start()
        previous = signal.signal(signal.SIGTERM, stop)  # `kill` cleans up too, not only Ctrl-C
        print(f"talkinghead app on {url} (Ctrl-C stops it and removes {self.workspace.root})", flush=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.close()

    def close(self) -> None:
        if self.ui is not None:
            self.ui.close()
            self.ui = None
        if self._temp_dir_set:
            if self._saved_temp_dir is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = self._saved_temp_dir
            self._temp_dir_set = False
        if self.workspace is not None:
            self.workspace.close()

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["Animation", "AppServer", "AppUnavailable", "Limits", "LimitError", "OutsideWorkspaceError", "Studio",
           "Workspace", "annotate_picture", "build_ui", "write_sample_driver"]
