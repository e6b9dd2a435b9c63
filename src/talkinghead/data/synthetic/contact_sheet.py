"""A grid of synthetic people for the docs (`python -m talkinghead.data.synthetic`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from talkinghead.data.synthetic.identity import Identity
from talkinghead.data.synthetic.motion import Motion
from talkinghead.data.synthetic.render import render_frame

log = logging.getLogger(__name__)



def contact_sheet(num_identities: int = 6, num_frames: int = 6, size: int = 128, seed: int = 0,
                  clip_length: int = 60) -> np.ndarray:
    """A grid (one row per identity) of frames spread over a clip: uint8 RGB [rows*size, cols*size, 3]."""
    rows = []
    for i in range(num_identities):
        ident = Identity.sample(seed + i)
        motion = Motion.sample(seed + 1000 + i, clip_length)
        ts = np.linspace(0, clip_length - 1, num_frames).round().astype(int)
        rows.append(np.concatenate([render_frame(ident, motion.frame(int(t)), size)[0] for t in ts], axis=1))
    return np.concatenate(rows, axis=0)


def save_contact_sheet(path: str | Path, num_identities: int = 6, num_frames: int = 6, size: int = 128,
                       seed: int = 0) -> Path:
    """Write `contact_sheet(...)` as a PNG to `path` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(num_identities, num_frames, size, seed)
    sheet = sheet & np.uint8(0xFE)  # drop the lowest bit: invisible, and the PNG stays under 300 KB for the docs
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"save_contact_sheet: could not write {path}")
    log.info("wrote synthetic contact sheet %s", path)
    return path


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the synthetic talking-head contact sheet.")
    parser.add_argument("output", nargs="?", default="docs/images/synthetic_contact_sheet.png")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    save_contact_sheet(args.output, size=args.size, seed=args.seed)
    return 0
