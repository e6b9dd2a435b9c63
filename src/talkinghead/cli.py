"""The `talkinghead` command: one subcommand per user task, each a few lines calling the library.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments and sets ``func`` to a
``_run_<name>(args) -> int`` that calls the library. Heavy imports happen inside ``_run_*`` so that
``talkinghead --help`` stays fast. The options several commands share are in `cli_options`; ``evaluate`` and
``study`` are in `cli_evaluation`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from talkinghead import __version__
from talkinghead.cli_evaluation import add_evaluate, add_study
from talkinghead.cli_options import (
    TRAINED_MODEL_SECTIONS,
    add_common_config_arguments,
    add_set_option,
    check_overrides,
    device,
    resolve_config,
)
from talkinghead.config import ConfigError

# --- subcommands (each adds itself below; keep them thin) ---

SUBCOMMANDS: list = []


def _add_info(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print the resolved config and the networks' sizes and FLOPs (JSON)")
    add_common_config_arguments(parser, default_preset="paper-256")
    parser.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import json

    from talkinghead.models.summary import model_summary

    config = resolve_config(args)
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
                      "(paper-256, small-128, cpu-128, tiny-64)")
    add_set_option(parser)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU cores)")
    parser.add_argument("--shard", default="0/1", metavar="i/n", help="process only shard i of n (job arrays); "
                        "shards may share DATASET")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="keep every K-th frame (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="at most N frames per video")
    parser.add_argument("--min-frames", type=int, default=2, metavar="N", help="skip videos with fewer usable "
                        "frames (default 2: an episode needs a target and a different source)")
    parser.add_argument("--backend", default="dlib", help="landmark backend: dlib (offline), face-alignment, "
                        "mediapipe")
    parser.add_argument("--split", default=None, metavar="FILE", help="identity split JSON: who is in each clip, "
                        "who is kept for validation and who is held out for the test (format: talkinghead.data.split)")
    parser.add_argument("--part", default="all", choices=("train", "validation", "test", "all"),
                        help="with --split: prepare only the training people (never the validation or held-out "
                        "ones), only the validation people, only the held-out test people, or all (default)")
    parser.add_argument("--retry-skipped", action="store_true", help="try inputs skipped by earlier runs again")
    parser.add_argument("--index-only", action="store_true", help="only rebuild index.json from the finished "
                        "videos (e.g. after all shards)")
    parser.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    import os

    from talkinghead.config import apply_overrides, preset
    from talkinghead.data.prepare import PrepareSettings, parse_shard, prepare_dataset, rebuild_index
    from talkinghead.data.split import IdentitySplit

    if args.index_only:
        index = rebuild_index(args.output)
        print(f"{args.output}: index of {index['num_videos']} videos, {index['num_frames']} frames")
        return 0
    config = apply_overrides(preset(args.preset or "paper-256"), args.overrides)
    split = IdentitySplit.load(args.split) if args.split else None
    settings = PrepareSettings(image_size=args.size or config.model.image_size, crop_scale=config.data.crop_scale,
                               crop_lift=config.data.crop_lift, landmark_backend=args.backend, every=args.every,
                               max_frames=args.max_frames, min_frames=args.min_frames,
                               identity_split_sha256=split.sha256 if split else None, split_part=args.part)
    report = prepare_dataset(args.videos, args.output, settings, workers=args.workers or os.cpu_count() or 1,
                             shard=parse_shard(args.shard), retry_skipped=args.retry_skipped, progress=True,
                             split=split)
    print(f"{args.output}: {report.written} videos written ({report.frames_written} frames, "
          f"{report.frames_per_second:.1f} frames/s), {report.skipped} skipped this run "
          f"(see {args.output}/skipped.jsonl), {report.already_done} done before")
    return 0


SUBCOMMANDS.append(_add_prepare)


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="meta-learn E, G, D on a prepared dataset (1 process, or many under torchrun)",
        description="Meta-learning (paper §3.2). Many GPUs/nodes: torchrun --nproc-per-node N -m talkinghead train ...")
    parser.add_argument("--data", required=True, metavar="DATASET", help="dataset folder (talkinghead prepare)")
    add_common_config_arguments(parser, default_preset="paper-256")
    parser.add_argument("--run-dir", required=True, metavar="RUN", help="checkpoints, export, metrics, samples")
    parser.add_argument("--resume", default="auto", metavar="auto|never|PATH",
                        help="auto (default): continue RUN's newest checkpoint if any; never; or a checkpoint file")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="total E/G steps (= --set train.steps=N)")
    parser.add_argument("--max-minutes", type=float, default=None, metavar="M", help="stop cleanly (checkpoint and "
                        "export written) after M minutes of this run, a fixed compute budget; --resume auto goes on")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config (JSON) and exit")
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    overrides = [*args.overrides, *([f"train.steps={args.steps}"] if args.steps is not None else [])]
    from talkinghead.config import apply_overrides, preset

    config = apply_overrides(preset(args.preset), overrides)
    if args.dry_run:
        print(config.to_json())
        return 0
    from talkinghead.training.run import time_budget, train_on_dataset

    hooks = [time_budget(args.max_minutes)] if args.max_minutes is not None else []
    learner = train_on_dataset(config, args.data, args.run_dir, resume=args.resume, device=args.device, hooks=hooks)
    if learner.world.is_main:
        print(f"{args.run_dir}: {learner.step} steps, {learner.images} images, {learner.bad_steps} skipped")
    return 0


SUBCOMMANDS.append(_add_train)


SUBCOMMANDS.append(add_evaluate)


def _add_finetune(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune", help="personalize a trained model on one or a few pictures (or a video) of a person -> .avatar")
    parser.add_argument("--checkpoint", default=None, help="inference export, or a training run directory "
                        "(default: the shipped real-face model, docs/model-card.md)")
    parser.add_argument("--source", nargs="+", required=True, help="picture(s) of one person, or one video")
    parser.add_argument("-o", "--output", required=True, help="avatar file to write (e.g. person.avatar)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="fine-tuning updates (0 = feed-forward only)")
    length.add_argument("--epochs", type=int, default=None, help="passes over the sources (default: the config's, "
                        "paper 40)")
    parser.add_argument("--no-early-stop", action="store_true", help="with T >= 8: train all epochs even when the "
                        "held-out loss stops improving")
    parser.add_argument("--seed", type=int, default=0)
    add_set_option(parser, sections=TRAINED_MODEL_SECTIONS)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from talkinghead.inference import TalkingHead

    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    head = TalkingHead.load(args.checkpoint, device=device(args.device), finetune_overrides=args.overrides)
    steps = args.steps  # None: train for epochs (--epochs, else the config's); 0: feed-forward only
    epochs = args.epochs if args.epochs is not None else (head.config.finetune.epochs if steps is None else None)
    with tqdm(desc="fine-tuning", unit="step", disable=steps == 0) as bar:
        def progress(step: int, total: int, info: dict) -> None:
            bar.total = total
            bar.set_postfix(content=f"{info['content']:.3f}", epoch=info["epoch"])
            bar.update(step - bar.n)

        avatar = head.personalize(args.source, steps=steps or 0, epochs=epochs,
                                  seed=args.seed, progress=progress, early_stopping=not args.no_early_stop)
    avatar.save(output)
    info = avatar.info
    print(f"wrote {output}: {info['mode']}, T = {info['shots']}"
          + (f", {info['steps']} steps / {info['epochs']} epochs" if info["mode"] == "fine-tuned" else "")
          + (f", stopped early (best epoch {info['best_epoch']})" if info.get("stopped_early") else ""))
    return 0


def _add_animate(subparsers) -> None:
    from talkinghead.animation import DEFAULT_CROP_SIZE
    from talkinghead.compose import MAX_PICTURE_SIDE

    parser = subparsers.add_parser("animate", help="drive an avatar (or a portrait) with a video's face motion")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--avatar", help="avatar file from `talkinghead finetune`")
    who.add_argument("--checkpoint", help="inference export or training run directory (with --source; default: "
                     "the shipped real-face model, docs/model-card.md)")
    parser.add_argument("--source", nargs="+", help="picture(s) of the person (feed-forward), without --avatar")
    parser.add_argument("--steps", type=int, default=0, help="with --source: fine-tuning updates first")
    parser.add_argument("--driver", required=True, help="driving video")
    parser.add_argument("-o", "--output", required=True, help="output video (.mp4, H.264, driver's fps and audio)")
    parser.add_argument("--mode", choices=["relative", "absolute"], default="relative",
                        help="relative: the driver's motion on the avatar's own face shape (default); absolute: "
                        "the driver's landmarks, aligned to the source (the paper)")
    parser.add_argument("--find-best-frame", action="store_true",
                        help="use the driver frame most similar to the source as the motion reference")
    parser.add_argument("--lip-normalization", action=argparse.BooleanOptionalAction, default=None,
                        help="relative mode: measure the driver's motion between closed mouths, so that a source "
                        "photographed with its mouth open follows the driver's opening (default: as chosen on "
                        "validation people, landmarks.lip_normalization.DEFAULT; docs/model-card.md)")
    parser.add_argument("--side-by-side", action="store_true", help="driver | landmark image | result")
    parser.add_argument("--crop", action="store_true",
                        help="write the face crop (--size) instead of the whole picture with the head pasted back")
    parser.add_argument("--size", type=int, default=DEFAULT_CROP_SIZE, metavar="N",
                        help=f"with --crop: its side in pixels (default {DEFAULT_CROP_SIZE}; the warp family renders "
                        "there from the full-resolution source)")
    parser.add_argument("--max-side", type=int, default=MAX_PICTURE_SIDE, metavar="PX",
                        help=f"the whole picture's long side at most (default {MAX_PICTURE_SIDE}; a larger picture "
                        "is scaled down)")
    parser.add_argument("--paste-back", action="store_true", help=argparse.SUPPRESS)  # the default since issue 26
    parser.add_argument("--no-mark", action="store_true",
                        help="no visible 'synthetic' label (the metadata tag is always written)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--stats", action="store_true",
                        help="measure popping: the share of consecutive frames where the result changes more than 2x "
                        "the driver's own face crop + 2 grey levels; printed and written to OUTPUT.stats.json")
    add_set_option(parser, sections=TRAINED_MODEL_SECTIONS)
    parser.add_argument("--device", default=None)
    parser.set_defaults(func=_run_animate)


def _run_animate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from talkinghead.animation import write_animation
    from talkinghead.inference import Avatar, TalkingHead

    if Path(args.output).exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    torch_device = device(args.device)
    if args.avatar:
        avatar = Avatar.load(args.avatar, device=torch_device)
    else:
        if not args.source:
            raise ValueError("give --source (the picture(s) to animate; the shipped model unless --checkpoint) or "
                             "--avatar (a file from `talkinghead finetune`)")
        head = TalkingHead.load(args.checkpoint, device=torch_device, finetune_overrides=args.overrides)
        avatar = head.personalize(args.source, steps=args.steps)
    with tqdm(desc="animating", unit="frame") as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = write_animation(avatar, args.driver, args.output, mode=args.mode,
                                 find_best_frame=args.find_best_frame, side_by_side=args.side_by_side,
                                 crop=args.crop, size=args.size, max_side=args.max_side, mark=not args.no_mark,
                                 overwrite=args.overwrite, progress=progress, measure_pops=args.stats,
                                 **({} if args.lip_normalization is None
                                    else {"lip_normalization": args.lip_normalization}))
    held = f"; {result['held']} frames without a face held the last landmarks" if result["held"] else ""
    print(f"wrote {result['output']}: {result['frames']} frames at {result['fps']:.3f} fps{held}")
    if args.stats:
        print(_stability_line(result["stability"]))
        from talkinghead.data.index import write_json_atomic

        path = Path(f"{args.output}.stats.json")
        write_json_atomic(path, {k: v for k, v in result.items() if k != "output"} | {"video": args.output})
        print(f"stats written to {path}")
    return 0


def _stability_line(stability: dict) -> str:
    if not stability["pairs"]:
        return "pop rate: no pair of consecutive frames with a driver face"
    ratio = "n/a" if stability["change_ratio"] is None else f"{stability['change_ratio']:.2f}"
    return (f"pop rate {100 * stability['pop_rate']:.1f}% of {stability['pairs']} frame pairs (result changes > 2x the "
            f"driver's face crop + 2 grey levels); excess change {stability['excess_change']:.2f} grey levels; "
            f"change ratio {ratio}")


SUBCOMMANDS.append(_add_finetune)
SUBCOMMANDS.append(_add_animate)


def _add_demo(subparsers) -> None:
    from talkinghead.demo import DEFAULT_PRESET, DEMO_PRESETS

    parser = subparsers.add_parser(
        "demo", help="the whole system on synthetic talking heads, in minutes on a CPU (no data or weights needed)",
        description="First animate the packaged Mona Lisa with the shipped real-face model (DIR/mona_lisa.mp4), then "
                    "render synthetic people, meta-learn tiny-64 or warp-tiny (--preset), personalize unseen people "
                    "(feed-forward and fine-tuned, T=1 and 8), evaluate against copy-source and mesh warp, animate "
                    "one of them, and write DIR/report.md. Re-running resumes an interrupted demo.")
    parser.add_argument("--out", default="demo-out", metavar="DIR", help="output folder (default: demo-out)")
    parser.add_argument("--minutes", type=float, default=15.0, help="time budget; meta-learning gets about half "
                        "of it (default 15)")
    parser.add_argument("--scale", choices=["full", "test"], default="full",
                        help="full (default) or test (a few identities, for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", choices=sorted(DEMO_PRESETS), default=DEFAULT_PRESET,
                        help=f"the generator family meta-learned (default {DEFAULT_PRESET}): tiny-64, the paper's, "
                             "continuing from the packaged warm start; or warp-tiny, ours, warp-guided: it has no "
                             "warm start and begins exactly at the mesh warp, so --from-scratch is implied")
    parser.add_argument("--from-scratch", action="store_true",
                        help="meta-learn from random weights instead of the packaged warm start (tiny-64 "
                             "meta-learned on 1,500 other synthetic people; see README)")
    parser.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from talkinghead.demo import run_demo

    state = run_demo(args.out, minutes=args.minutes, scale=args.scale, seed=args.seed,
                     warm_start=not args.from_scratch, preset=args.preset)
    print(f"{args.out}/report.md written ({sum(state.get('seconds', {}).values()):.0f} s of work this run)")
    for check in state["done"]["report"].get("checks", []):
        print(f"  {'PASS' if check['passed'] else 'FAIL' if check['passed'] is False else 'n/a '}  {check['name']}")
    return 0


SUBCOMMANDS.insert(0, _add_demo)


def _add_app(subparsers) -> None:
    parser = subparsers.add_parser(
        "app", help="a local web page to animate a portrait (needs the extra: pip install -e \".[app]\")",
        description="Upload pictures (or pick a saved avatar) and a driving video, preview the landmarks and crop, "
                    "animate feed-forward or fine-tuned, play and download the result, save the avatar. Uploads and "
                    "results live in a temporary folder removed when the app stops.")
    parser.add_argument("--checkpoint", default=None, metavar="CKPT", help="inference export or training run "
                        "directory (default: the shipped real-face model, docs/model-card.md)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                        "computer only; another address lets anyone who can reach it use the app)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)")
    parser.add_argument("--max-video-seconds", type=float, default=60.0,
                        help="longest driving or source video in seconds (default 60)")
    parser.add_argument("--max-steps", type=int, default=400, help="most fine-tuning steps allowed (default 400)")
    add_set_option(parser, sections=TRAINED_MODEL_SECTIONS)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.set_defaults(func=_run_app)


def _run_app(args: argparse.Namespace) -> int:
    from talkinghead.app import AppServer, Limits

    limits = Limits(upload_mb=args.max_upload_mb, video_seconds=args.max_video_seconds, steps=args.max_steps)
    from talkinghead.shipped import resolve_checkpoint

    AppServer(resolve_checkpoint(args.checkpoint), host=args.host, port=args.port, limits=limits,
              device=device(args.device), finetune_overrides=args.overrides).serve_forever()
    return 0


def _add_live(subparsers) -> None:
    from talkinghead.animation import DEFAULT_CROP_SIZE

    parser = subparsers.add_parser(
        "live", help="drive an avatar live from a camera (or a video file standing in for one)",
        description="Landmarks from each camera frame drive the avatar: shown in a window with the latency per "
                    "frame, and/or written to a file. When the model is slower than the camera, frames are dropped "
                    "(and counted), never queued. q or Esc in the window (or Ctrl-C) stops.")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--avatar", help="avatar file from `talkinghead finetune` (or the app)")
    who.add_argument("--source", nargs="+", help="picture(s) of the person, personalized feed-forward by "
                     "--checkpoint (default: the shipped real-face model, docs/model-card.md)")
    parser.add_argument("--checkpoint", default=None, help="with --source: inference export or training run")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=None, metavar="N", help="camera number (default 0)")
    source.add_argument("--driver", default=None, metavar="VIDEO",
                        help="a video file played in real time as if it were the camera")
    parser.add_argument("--out", default=None, metavar="FILE", help="also write what is shown to this video (.mp4)")
    parser.add_argument("--no-window", action="store_true", help="no window (e.g. no display); needs --out")
    parser.add_argument("--mode", choices=["relative", "absolute"], default="relative",
                        help="relative (default): the motion on the avatar's own face shape; absolute: the paper")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--size", type=int, default=DEFAULT_CROP_SIZE, metavar="N",
                        help=f"the avatar's side in pixels (default {DEFAULT_CROP_SIZE}; the warp family renders there "
                        "from the full-resolution source)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--device", default=None)
    parser.set_defaults(func=_run_live)


def _run_live(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talkinghead.inference import Avatar
    from talkinghead.live import CameraSource, LiveError, VideoFileSource, run_live, window_unavailable, write_summary

    if args.out is not None and Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
    no_window = "--no-window was given" if args.no_window else window_unavailable()
    if no_window and args.out is None:
        raise LiveError(f"nothing would show the result ({no_window}): write it with --out live.mp4")
    if no_window and not args.no_window:
        print(f"talkinghead live: no window ({no_window}); writing {args.out} only", file=sys.stderr)
    if args.avatar:
        avatar = Avatar.load(args.avatar, device=device(args.device))
    else:
        from talkinghead.inference import TalkingHead

        avatar = TalkingHead.load(args.checkpoint, device=device(args.device)).personalize(args.source)
    source = VideoFileSource(args.driver) if args.driver else CameraSource(args.camera or 0)
    stats = run_live(avatar, source, window=not no_window, output=args.out, mode=args.mode, seconds=args.seconds,
                     size=args.size)
    print(write_summary(stats, args.out))
    return 0


SUBCOMMANDS.append(_add_app)
SUBCOMMANDS.append(_add_live)


SUBCOMMANDS.append(add_study)


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
        check_overrides(args)
        return int(args.func(args) or 0)
    except Exception as error:
        if not isinstance(error, ConfigError) and not isinstance(error, _user_errors()):
            raise  # a bug: keep the traceback
        print(f"talkinghead {args.command}: error: {error}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input (files, faces, settings): one clear line, no traceback. Imported only on error."""
    from talkinghead.app import AppUnavailable
    from talkinghead.landmarks.backends import BackendUnavailable, NoFaceError
    from talkinghead.live import LiveError
    from talkinghead.training.loop import TrainingDiverged
    from talkinghead.video import MediaError

    return (ConfigError, FileNotFoundError, FileExistsError, ValueError, MediaError, NoFaceError,
            BackendUnavailable, TrainingDiverged, AppUnavailable, LiveError)


if __name__ == "__main__":
    raise SystemExit(main())
