"""The `talkinghead` command: one subcommand per user task, each a few lines calling the library.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments and sets ``func`` to a
``_run_<name>(args) -> int`` that calls the library. Heavy imports happen inside ``_run_*`` so that
``talkinghead --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from talkinghead import __version__
from talkinghead.config import ConfigError


def _add_common_config_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    parser.add_argument("--preset", default=default_preset,
                        help="named preset: paper-256, small-128, tiny-64 (append -ff for the feed-forward variant)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any config field, e.g. --set train.batch_size=4 (repeatable)")


def _resolve_config(args: argparse.Namespace):
    from talkinghead.config import apply_overrides, preset

    return apply_overrides(preset(args.preset), args.overrides)


# --- subcommands (each adds itself below; keep them thin) ---

SUBCOMMANDS: list = []


def _add_info(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print the resolved config and the networks' sizes and FLOPs (JSON)")
    _add_common_config_arguments(parser, default_preset="paper-256")
    parser.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import json

    from talkinghead.models.summary import model_summary

    config = _resolve_config(args)
    print(json.dumps({"config": config.to_dict(), "networks": model_summary(config.model)}, indent=2))
    return 0


SUBCOMMANDS.append(_add_info)


def _add_prepare(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="videos and images -> a training dataset (landmarks, crops, index); parallel, resumable")
    parser.add_argument("videos", metavar="VIDEOS", help="a folder of videos/images (VoxCeleb-style id/video/clip.mp4 "
                        "or flat: identity = first folder, else the file's stem), or one file")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET", help="dataset folder (created; re-runs "
                        "resume it)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--size", type=int, default=None, help="frame size in pixels (default: the preset's, 256)")
    size.add_argument("--preset", default=None, help="take the frame size and crop settings from a preset "
                      "(paper-256, small-128, tiny-64)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override config fields, e.g. --set data.crop_scale=2.2")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU cores)")
    parser.add_argument("--shard", default="0/1", metavar="i/n", help="process only shard i of n (job arrays); "
                        "shards may share DATASET")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="keep every K-th frame (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="at most N frames per video")
    parser.add_argument("--min-frames", type=int, default=2, metavar="N", help="skip videos with fewer usable "
                        "frames (default 2: an episode needs a target and a different source)")
    parser.add_argument("--backend", default="dlib", help="landmark backend: dlib (offline), face-alignment, "
                        "mediapipe")
    parser.add_argument("--retry-skipped", action="store_true", help="try inputs skipped by earlier runs again")
    parser.add_argument("--index-only", action="store_true", help="only rebuild index.json from the finished "
                        "videos (e.g. after all shards)")
    parser.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    import os

    from talkinghead.config import apply_overrides, preset
    from talkinghead.data.prepare import PrepareSettings, parse_shard, prepare_dataset, rebuild_index

    if args.index_only:
        index = rebuild_index(args.output)
        print(f"{args.output}: index of {index['num_videos']} videos, {index['num_frames']} frames")
        return 0
    config = apply_overrides(preset(args.preset or "paper-256"), args.overrides)
    settings = PrepareSettings(image_size=args.size or config.model.image_size, crop_scale=config.data.crop_scale,
                               crop_lift=config.data.crop_lift, landmark_backend=args.backend, every=args.every,
                               max_frames=args.max_frames, min_frames=args.min_frames)
    report = prepare_dataset(args.videos, args.output, settings, workers=args.workers or os.cpu_count() or 1,
                             shard=parse_shard(args.shard), retry_skipped=args.retry_skipped, progress=True)
    print(f"{args.output}: {report.written} videos written ({report.frames_written} frames, "
          f"{report.frames_per_second:.1f} frames/s), {report.skipped} skipped this run "
          f"(see {args.output}/skipped.jsonl), {report.already_done} done before")
    return 0


SUBCOMMANDS.append(_add_prepare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkinghead",
        description="Animate a portrait from one photo or a few, driven by another video's face landmarks.",
    )
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"talkinghead {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
