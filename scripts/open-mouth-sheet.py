"""The model card's open-mouth comparison (issue 25): public-domain portraits, one picture each, feed-forward, the
mouth driven open from the portrait's own closed-mouth landmarks (lower lip and chin lowered by 0.15 and 0.30
inter-ocular distances, `landmarks.geometry.open_mouth`). Columns per opening: the mesh warp of the
portrait | each checkpoint given. With ``--driver-landmarks FILE.npy`` (a talker's landmark track [T, 68, 2]) the
openings are that talker's instead: its frames at the 85th and the highest mouth openness, retargeted relative to
its most closed frame (`landmarks.retarget`, as `animate` drives). With ``--blink`` the eyes close instead of the
mouth opening (lids half-way and shut onto the corners' line, `landmarks.geometry.close_eyes`), and the sheet shows
the upper face. Face crops at 256 px. Only generated pictures are written; the portraits and the driver are read where
they are.

    python scripts/open-mouth-sheet.py OUT.jpg --portrait A.png --portrait B.jpg --checkpoint OLD --checkpoint NEW
    python scripts/open-mouth-sheet.py BLINK.jpg --blink --checkpoint OLD --checkpoint shipped
    (no --portrait: the packaged Mona Lisa; a checkpoint named "shipped": the packaged model)
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from talkinghead.inference import TalkingHead
from talkinghead.landmarks.geometry import close_eyes, open_mouth
from talkinghead.landmarks.mesh import sampling_grid, warp_image
from talkinghead.showcase import packaged_mona_lisa, write_picture

SIZE = 256
OPENINGS = (0.15, 0.30)
BLINKS = (0.5, 0.2)
"""``--blink``: the share of each lid's distance from the eye's corners' line that the driven shapes keep."""


def driven_shapes(rest: np.ndarray, driver: np.ndarray | None) -> list[np.ndarray]:
    """The portrait's landmarks [68, 2] opened twice: by `open_mouth`, or by the driver's own open frames."""
    if driver is None:
        return [open_mouth(rest, by) for by in OPENINGS]
    from talkinghead.landmarks.retarget import retarget
    from talkinghead.metrics.mouth import mouth_openness

    openness = np.asarray(mouth_openness(driver))
    picks = [int(np.argsort(openness)[int(0.85 * (len(openness) - 1))]), int(np.argmax(openness))]
    return list(retarget(driver[picks], rest, "relative", reference=driver[int(np.argmin(openness))]))


def row(portrait: str, heads: list, driver: np.ndarray | None, blink: bool = False) -> np.ndarray:
    tiles = []
    for opening in range(len(BLINKS if blink else OPENINGS)):
        for number, head in enumerate(heads):
            avatar = head.personalize([portrait])
            rest = avatar.source_landmarks[0]
            driven = close_eyes(rest, BLINKS[opening]) if blink else driven_shapes(rest, driver)[opening]
            if number == 0:
                model = avatar.config.model.image_size
                scaled = [(p + 0.5) * (SIZE / model) - 0.5 for p in (rest, driven)]
                source = cv2.resize(avatar.detail_crops[0], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                tiles.append(warp_image(source, sampling_grid(scaled[0], scaled[1], SIZE)))
            tiles.append(avatar.render_batch(driven[None], size=SIZE)[0])
    crop = ((slice(SIZE // 5, SIZE // 2), slice(SIZE // 6, SIZE * 5 // 6)) if blink  # the eyes
            else (slice(SIZE // 4, SIZE * 7 // 8), slice(SIZE // 5, SIZE * 4 // 5)))  # the lower face
    return np.concatenate([tile[crop] for tile in tiles], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--portrait", action="append", default=[])
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--driver-landmarks", default=None, help="a talker's landmark track [T, 68, 2] (.npy)")
    parser.add_argument("--blink", action="store_true", help="close the eyes instead of opening the mouth")
    args = parser.parse_args()
    if args.blink and args.driver_landmarks is not None:
        parser.error("--blink closes the portrait's own eyes; it takes no --driver-landmarks")
    driver = None if args.driver_landmarks is None else np.load(args.driver_landmarks).astype(np.float32)
    heads = [TalkingHead.load(None if c == "shipped" else c) for c in args.checkpoint]
    portraits = args.portrait or [str(packaged_mona_lisa())]
    sheet = np.concatenate([row(p, heads, driver, args.blink) for p in portraits], axis=0)
    print(write_picture(args.out, sheet))
    if args.blink:
        openings = "lids keeping " + ", ".join(f"{b:g}" for b in BLINKS) + " of their distance"
    else:
        openings = ("the driver's 85th-percentile and widest openings" if driver is not None
                    else ", ".join(f"{o} inter-ocular distances" for o in OPENINGS))
    print(f"columns, per opening ({openings}): mesh warp | " + " | ".join(args.checkpoint))


if __name__ == "__main__":
    main()
