"""A prepared dataset thinned in time: every N-th frame of each video, as a new dataset.

Why: a lent accelerator receives at most 64 MiB of working tree per call (README: "A few minutes on one
borrowed GPU"), and the 128-px training part is 324 MB. Neighbouring frames of a talking head are near-copies, so
every 10th frame keeps the people, the poses and the mouth and eye gaps that episodes sample, at a tenth of
the bytes. The same keys give the same ``video_index`` order, so a warm start's rows still line up; the
content hash changes, as it must, since the frames differ.

Frame files are copied byte for byte (no re-encoding). Per-frame meta fields are sliced with the frames,
``detected`` (indices of frames whose landmarks came from detection) is renumbered, and each ``meta.json``
records where it came from (``subsampled``). The output is written under a temporary name and renamed into
place when complete, so an interrupted run leaves no half-written dataset.

Usage: ``python -m talkinghead.data.subsample DATASET OUT --every 10``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from talkinghead.data import index as dsindex

PER_FRAME_FIELDS = ("crop_boxes", "source_frames", "yaw")  # one entry per stored frame, sliced with them
FRAME_INDEX_FIELDS = ("detected",)  # stored-frame indices, renumbered
HASHED_FIELDS = ("num_frames", "frames_sha256", "landmarks_sha256")  # recomputed by write_video_folder


def kept_frames(num_frames: int, every: int, offset: int = 0) -> list[int]:
    """Frames ``offset, offset + every, ...``; at least two (an episode needs a source and a target)."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    if not 0 <= offset < every:
        raise ValueError(f"offset must be in [0, every), got {offset} with every={every}")
    keep = list(range(offset, num_frames, every))
    if len(keep) < 2:
        keep = list(range(min(num_frames, 2)))
    return keep


def subsample_meta(meta: dict[str, Any], keep: list[int], every: int, source_hash: str) -> dict[str, Any]:
    """The video's ``meta.json`` for the kept frames (hash fields dropped: `write_video_folder` adds them)."""
    num_frames = int(meta["num_frames"])
    out = {key: value for key, value in meta.items() if key not in HASHED_FIELDS}
    for key in PER_FRAME_FIELDS:
        if key in meta:
            if len(meta[key]) != num_frames:
                raise dsindex.DatasetError(f"meta field {key!r} of {meta.get('key')!r} has {len(meta[key])} "
                                           f"entries for {num_frames} frames; re-run `talkinghead prepare`")
            out[key] = [meta[key][t] for t in keep]
    position = {t: i for i, t in enumerate(keep)}
    for key in FRAME_INDEX_FIELDS:
        if key in meta:
            out[key] = [position[t] for t in meta[key] if t in position]
    out["subsampled"] = {"every": every, "first": keep[0], "source_content_hash": source_hash,
                         "source_num_frames": num_frames}
    return out


def subsample_dataset(source: str | Path, output: str | Path, every: int, offset: int = 0) -> dict[str, Any]:
    """Write every ``every``-th frame of each video of the dataset at ``source`` to a new dataset ``output``.

    Returns the new index. Refuses an existing ``output`` (nothing is overwritten).
    """
    source, output = Path(source), Path(output)
    index = dsindex.load_index(source)
    if output.exists():
        raise FileExistsError(f"{output} exists; choose a new folder (nothing was written)")
    temp = output.with_name(output.name + ".partial")
    if temp.exists():
        shutil.rmtree(temp)
    (temp / dsindex.VIDEOS_DIR).mkdir(parents=True)
    for entry in index.videos:
        folder = source / entry.path
        keep = kept_frames(entry.num_frames, every, offset)
        landmarks = dsindex.load_landmarks(folder, entry.num_frames)[keep]
        frames = [dsindex.frame_path(folder, t, index.frame_format).read_bytes() for t in keep]
        meta = subsample_meta(index.meta(entry.video_index), keep, every, index.content_hash)
        target = temp / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        dsindex.write_video_folder(target, frames, landmarks, meta)
    raw = dsindex.read_json(source / dsindex.INDEX_FILE)
    settings = {"image_size": index.image_size, "crop": index.crop, "landmark_backend": index.landmark_backend}
    if "identity_split" in raw:
        settings["identity_split"] = raw["identity_split"]
    new_index = dsindex.build_index(temp, settings)
    temp.rename(output)
    return new_index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talkinghead.data.subsample", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="a prepared dataset folder (holding index.json)")
    parser.add_argument("out", help="the new dataset folder (must not exist)")
    parser.add_argument("--every", type=int, required=True, help="keep every N-th frame of each video")
    parser.add_argument("--offset", type=int, default=0, help="the first kept frame (0 <= offset < every)")
    args = parser.parse_args(argv)
    new = subsample_dataset(args.dataset, args.out, args.every, args.offset)
    print(f"{args.out}: {new['num_videos']} videos, {new['num_frames']} frames, content hash {new['content_hash']}")


if __name__ == "__main__":
    main()
