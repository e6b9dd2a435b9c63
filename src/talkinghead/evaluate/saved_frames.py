"""Frames an evaluation saves for the user study (`talkinghead.study`): per test video, the first
``EvaluationSettings.study_frames`` target frames, real and as every method generated them at every T.

Layout under the evaluation folder (PNG, lossless, so real and generated frames go through the same encoding)::

    OUT/frames/<video>/real/<frame>.png              the ground-truth frame (the model's size)
    OUT/frames/<video>/T<T>/<method>/<frame>.png     what <method> generated for it from T frames

``<video>`` is the video key as a file name (`scoring.safe_name`), ``<frame>`` the stored frame number, 6 digits.
The video's key and person are in ``OUT/splits.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.evaluate.scoring import safe_name

FRAMES_FOLDER = "frames"


def save_study_frames(out: Path, key: str, shots: int, target_frames: Sequence[int], real: np.ndarray,
                      outputs: dict[str, Sequence[np.ndarray]], count: int) -> None:
    """Write the first ``count`` target frames of video ``key``: real ones (once) and each method's at T = shots."""
    from talkinghead.metrics.report import save_png

    if count <= 0:
        return
    folder = out / FRAMES_FOLDER / safe_name(key)
    for i, frame in enumerate(list(target_frames)[:count]):
        name = f"{int(frame):06d}.png"
        if not (folder / "real" / name).is_file():
            save_png(folder / "real" / name, real[i])
        for method, images in outputs.items():
            save_png(folder / f"T{shots}" / method / name, images[i])


@dataclass(frozen=True)
class SavedFrame:
    """One saved frame: its path relative to the evaluation folder and what it is."""

    path: str
    video: str
    identity: str
    frame: int
    method: str | None
    """None for a real frame."""
    shots: int | None


def list_study_frames(out: str | Path) -> list[SavedFrame]:
    """Every saved frame of the evaluation in ``out`` (real and generated), in a stable order.

    Raises FileNotFoundError naming what to do when the folder holds no evaluation or no saved frames."""
    import json

    out = Path(out)
    splits_path = out / "splits.json"
    if not splits_path.is_file():
        raise FileNotFoundError(f"{out} holds no evaluation (no splits.json): give the --out folder of "
                                "'talkinghead evaluate'")
    found: list[SavedFrame] = []
    for split in json.loads(splits_path.read_text()):
        key, identity = split["key"], split["identity"]
        folder = out / FRAMES_FOLDER / safe_name(key)
        for path in sorted((folder / "real").glob("*.png")):
            found.append(SavedFrame(path.relative_to(out).as_posix(), key, identity, int(path.stem), None, None))
        for shots_folder in sorted(folder.glob("T*")):
            for method_folder in sorted(p for p in shots_folder.iterdir() if p.is_dir()):
                for path in sorted(method_folder.glob("*.png")):
                    found.append(SavedFrame(path.relative_to(out).as_posix(), key, identity, int(path.stem),
                                            method_folder.name, int(shots_folder.name[1:])))
    if not any(f.method for f in found):
        raise FileNotFoundError(f"{out} has no saved frames for a user study ({out / FRAMES_FOLDER} is empty): "
                                "run 'talkinghead evaluate ... --study-frames 8' into a new --out folder")
    return found
