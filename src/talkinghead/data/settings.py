"""What decides a dataset's content, and where a dataset folder keeps it (``.state/settings.json``).

The lower room that both dataset writers share: `talkinghead.data.prepare` (videos and images) and
`talkinghead.data.synthetic_dataset` (synthetic talking heads) write the same format under the same settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from talkinghead.data import index as dsindex
from talkinghead.data.split import check_part

STATE_DIR = ".state"
"""A dataset folder's bookkeeping: settings, temporary folders, skipped records."""


@dataclass(frozen=True)
class PrepareSettings:
    """What decides a dataset's content (recorded in ``.state/settings.json`` and the index)."""

    image_size: int = 256
    crop_scale: float = 2.0
    crop_lift: float = 0.15
    crop_smoothing_seconds: float = 0.3
    landmark_backend: str = "dlib"
    every: int = 1
    max_frames: int | None = None
    min_frames: int = 2
    identity_split_sha256: str | None = None
    """sha256 of the identity split file that named the people (`talkinghead.data.split`), if one did."""
    split_part: str = "all"
    """Which people of that split: ``train``, ``validation``, ``test`` (the held-out ones) or ``all``."""

    def validate(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image size must be >= 8 pixels, got {self.image_size}")
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.min_frames < 1:
            raise ValueError(f"--min-frames must be >= 1, got {self.min_frames}")
        check_part(self.split_part)
        if self.split_part != "all" and self.identity_split_sha256 is None:
            raise ValueError(f"--part {self.split_part} needs --split FILE (the identity split that says who is "
                             "in which part)")

    def index_settings(self) -> dict[str, Any]:
        values = {"image_size": self.image_size, "landmark_backend": self.landmark_backend,
                  "crop": {"policy": "talkinghead.landmarks.crop", "scale": self.crop_scale, "lift": self.crop_lift,
                           "smoothing_seconds": self.crop_smoothing_seconds, "pad": "constant"}}
        if self.identity_split_sha256 is not None:
            values["identity_split"] = {"sha256": self.identity_split_sha256, "part": self.split_part}
        return values


def check_settings(output: Path, settings: PrepareSettings) -> None:
    """Record ``settings`` in a new dataset folder, or refuse a folder prepared with other ones (a dataset's
    videos must all be made the same way, whichever run or shard wrote them)."""
    path = output / STATE_DIR / "settings.json"
    wanted = asdict(settings)
    if path.exists():
        stored = dsindex.read_json(path)
        if any(stored.get(k) != wanted.get(k) for k in set(stored) | set(wanted)):
            changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            differences = ", ".join(f"{k} was {stored.get(k)!r}, now {wanted.get(k)!r}" for k in changed)
            raise ValueError(f"{output} was prepared with other settings ({differences}); use the same options "
                             "or a new output folder")
    else:
        dsindex.write_json_atomic(path, wanted)


def key_id(key: str) -> str:
    """A short file-system-safe name for a video key (its temporary folder, its skipped record)."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]
