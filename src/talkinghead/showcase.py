"""The product on public-domain portraits: the packaged Mona Lisa driven by a synthetic talking head with the
shipped real-face model (`talkinghead.shipped`), and the pictures made from that video.

`talkinghead demo` runs `animate_portrait` first (``DIR/mona_lisa.mp4``: the whole painting with the head talking,
as `talkinghead animate` writes it). The README's first pictures and the model card's failure-case pictures come
from `main`::

    python -m talkinghead.showcase docs/images [--portrait PUBLIC_DOMAIN_PORTRAIT ...]

The driver is rendered by our own renderer (`talkinghead.data.synthetic`): nothing research-licensed is shown.
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

DRIVER = (0, 7)
"""(identity seed, motion seed) of the synthetic talking head that drives the portraits (the app's sample driver)."""
SHEET_COLUMNS = 8
SHEET_WIDTH = 1600
"""The README's sheets are scaled down to this width (8 whole paintings side by side are ~3000 px)."""


def packaged_mona_lisa() -> Path:
    """The public-domain Mona Lisa that ships with the package (provenance: talkinghead/assets/README.md)."""
    path = Path(str(importlib.resources.files("talkinghead") / "assets" / "mona_lisa.jpg"))
    if not path.is_file():
        raise FileNotFoundError(f"the packaged portrait {path} is missing from this installation; reinstall "
                                "talkinghead")
    return path


def write_synthetic_driver(path: str | Path, frames: int, size: int, data=None) -> np.ndarray:
    """Render the synthetic driver (`DRIVER`) for ``frames`` frames, framed by the crop policy (``data``: a
    `DataConfig`), H.264 at 25 fps, to ``path``; returns its landmarks [T, 68, 2] in the written frames' pixels."""
    from talkinghead.data.synthetic.driver import write_driver_video

    return write_driver_video(path, DRIVER[0], DRIVER[1], frames, size, data)


def animate_portrait(out: str | Path, portrait: str | Path | None = None, frames: int = 96, head=None,
                     name: str = "mona_lisa") -> dict[str, Any]:
    """Animate ``portrait`` (default: the packaged Mona Lisa) with ``head`` (default: the shipped model),
    feed-forward from the one picture (T = 1), driven by `DRIVER` in relative mode: ``out/NAME.mp4``, the whole
    picture with the head talking (what `talkinghead animate` writes by default); its driver is
    ``out/NAME-driver.mp4``. Returns what was written."""
    from talkinghead.animation import write_animation
    from talkinghead.inference import TalkingHead

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    head = head or TalkingHead.load_shipped()
    portrait = Path(portrait) if portrait is not None else packaged_mona_lisa()
    avatar = head.personalize([str(portrait)])
    size = head.config.model.image_size
    driver = out / f"{name}-driver.mp4"
    points = write_synthetic_driver(driver, frames, size, head.config.data)
    output = out / f"{name}.mp4"
    stats = write_animation(avatar, driver, output, mode="relative", overwrite=True, landmarks=points)
    return {"portrait": portrait.name, "output": str(output), "driver": str(driver), "frames": stats["frames"],
            "fps": stats["fps"], "size": stats["size"], "model": head.config.preset, "shots": 1,
            "mode": "feed-forward, relative"}


def _frames_at(video: str | Path, picks: np.ndarray) -> dict[int, np.ndarray]:
    """The frames numbered ``picks`` of a video, streamed (only those are kept)."""
    from talkinghead.video import VideoReader

    wanted = {int(i) for i in picks}
    return {i: frame for i, frame in enumerate(VideoReader(video)) if i in wanted}


def contact_sheet(video: str | Path, driver: str | Path | None = None, columns: int = SHEET_COLUMNS) -> np.ndarray:
    """``columns`` evenly spaced frames of an animation in a row, with the ``driver``'s frames at the same times
    above them (each scaled to a square of the animation's width) -> uint8 RGB [(W +) H, columns * W, 3]."""
    from talkinghead.video import VideoReader

    total = len(VideoReader(video)) or sum(1 for _ in VideoReader(video))
    if not total:
        raise ValueError(f"{video} has no frames")
    picks = np.linspace(0, total - 1, columns).round().astype(int)
    frames = _frames_at(video, picks)
    row = np.concatenate([frames[i] for i in picks], axis=1)
    if driver is None:
        return row
    width = frames[picks[0]].shape[1]
    drivers = _frames_at(driver, picks)
    top = np.concatenate([cv2.resize(drivers[i], (width, width), interpolation=cv2.INTER_AREA) for i in picks], 1)
    return np.concatenate([top, row], axis=0)


def failure_cases(video: str | Path, frames: int, driver: str | Path) -> tuple[np.ndarray, list[str]]:
    """The known hard cases in an animation by `animate_portrait` of ``frames`` driver frames: the neutral first
    frame, the driver's widest-open mouth (teeth and the inside of the mouth must be invented) and its largest head
    turn (parts of the face turn into view) -> (uint8 RGB [H, 3 * (H + W), 3]: for each case the driver's frame
    (scaled to the picture's height) and the picture, the cases' captions)."""
    from talkinghead.data.synthetic import SyntheticVideo

    _, points, yaw = SyntheticVideo(DRIVER[0], DRIVER[1], frames).render(64)
    mouth = np.linalg.norm(points[:, 66] - points[:, 62], axis=1)  # inner lips, 68-point scheme
    picks = {"neutral (frame 0)": 0, f"widest mouth (frame {int(np.argmax(mouth))})": int(np.argmax(mouth)),
             f"largest head turn, yaw {float(yaw[np.argmax(np.abs(yaw))]):+.0f}° (frame "
             f"{int(np.argmax(np.abs(yaw)))})": int(np.argmax(np.abs(yaw)))}
    indices = np.array(list(picks.values()))
    results, drivers = _frames_at(video, indices), _frames_at(driver, indices)
    height = results[0].shape[0]
    panels = [np.concatenate([cv2.resize(drivers[i], (height, height), interpolation=cv2.INTER_AREA), results[i]],
                             axis=1) for i in indices]
    return np.concatenate(panels, axis=1), list(picks)


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` scaled to ``width`` columns, keeping its aspect ratio (area interpolation when shrinking)."""
    if image.shape[1] == width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def write_picture(path: str | Path, image: np.ndarray, quality: int = 90) -> Path:
    """An RGB picture as JPEG (or PNG by suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.showcase",
                                     description="the README's and model card's pictures from public-domain "
                                                 "portraits and the shipped model")
    parser.add_argument("out", help="folder for the pictures (docs/images)")
    parser.add_argument("--frames", type=int, default=96, help="driver frames (default 96, about 4 s)")
    parser.add_argument("--portrait", action="append", default=[], metavar="PATH",
                        help="another public-domain portrait to show (repeatable; its pictures only, never the file, "
                             "may be committed)")
    parser.add_argument("--work", default=None, help="folder for the videos (default: a new temporary folder; "
                        "they are not committed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from talkinghead.inference import TalkingHead

    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="talkinghead-showcase-"))
    head = TalkingHead.load_shipped()
    made, cases = [], []
    for portrait in [None, *args.portrait]:
        name = "mona_lisa" if portrait is None else Path(portrait).stem.split("__")[0]
        result = animate_portrait(work, portrait, args.frames, head=head, name=name)
        sheet = contact_sheet(result["output"], result["driver"])
        made.append(write_picture(out / f"{name}-sheet.jpg", fit_width(sheet, min(SHEET_WIDTH, sheet.shape[1]))))
        strip, captions = failure_cases(result["output"], args.frames, result["driver"])
        cases.append(fit_width(strip, SHEET_WIDTH))
    made.append(write_picture(out / "failure-cases.jpg", np.concatenate(cases, axis=0)))
    for path in made:
        print(path)
    print(f"videos in {work}")
    print("failure-case columns (driver | result each): " + "; ".join(captions))


if __name__ == "__main__":
    main()
