"""The app's one temporary folder and its limits, without Gradio: uploads, previews, results and saved avatars
live in it (removed on exit); a path that comes from a client is used only when it resolves inside it."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from talkinghead.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MB = 1 << 20
AVATAR_SUFFIXES = {".avatar", ".safetensors"}


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
