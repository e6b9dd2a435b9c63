"""The evaluation subcommands of `talkinghead`: ``evaluate`` (the paper's protocol with the baselines and what a
viewer sees) and ``study`` (the user study). Kept apart from `cli` so that each file stays one readable size; the
pattern is the same (``add_<name>(subparsers)`` declares, ``_run_<name>(args)`` calls the library)."""

from __future__ import annotations

import argparse

from talkinghead.cli_options import TRAINED_MODEL_SECTIONS, add_set_option


def add_evaluate(subparsers) -> None:
    from talkinghead.evaluate.protocol import DEFAULT_WINDOW, SPLITS

    parser = subparsers.add_parser(
        "evaluate", help="the paper's self-reenactment protocol (and cross-identity) with baselines -> reports",
        description="Self-reenactment (paper §4): per test video, T frames personalize the model (feed-forward and "
                    "fine-tuned) and other frames are the ground truth; copy-source, mesh-warp, mesh-warp+blur and "
                    "fixed-blend baselines; SSIM, PSNR, L1, CSIM, AKD, the mouth region, the pop rate over a window "
                    "of consecutive frames, FID (when its weights are there). Resumable: re-run with the "
                    "same --out.")
    parser.add_argument("--checkpoint", required=True, action="append", metavar="CKPT",
                        help="inference export or training run dir; give it twice (one FF, one FT) for both models "
                        "in one table")
    parser.add_argument("--data", required=True, metavar="DATASET", help="dataset folder of people unseen in training")
    parser.add_argument("--out", required=True, metavar="DIR", help="report folder (re-running resumes it)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 8, 32], metavar="T",
                        help="numbers of personalization frames (default: 1 8 32)")
    parser.add_argument("--targets", type=int, default=32, help="hold-out ground-truth frames per video (default 32)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--finetune-steps", type=int, default=None, metavar="N",
                        help="fine-tuning updates per avatar (0: feed-forward only; default: the config's epochs)")
    length.add_argument("--finetune-epochs", type=int, default=None, metavar="E",
                        help="fine-tuning epochs (default: the config's, the paper's 40)")
    parser.add_argument("--videos", type=int, default=None, metavar="N", help="test videos (default: all eligible)")
    parser.add_argument("--per-identity", type=int, default=None, metavar="N", help="at most N test videos of one "
                        "person (default: no limit)")
    parser.add_argument("--cross-identity", action="store_true", help="also drive each person with another's motion")
    parser.add_argument("--split", choices=SPLITS, default="random",
                        help="random: the paper's frame split (default); large-yaw: targets turned furthest to one "
                        "side, sources > 20 degrees of yaw from them, videos whose head turns that much; mouth-open: "
                        "targets with the mouth open, sources with it closed; eyes-closed: targets in a blink, "
                        "sources with the eyes open")
    parser.add_argument("--temporal-window", type=int, default=DEFAULT_WINDOW, metavar="N",
                        help=f"consecutive frames per video for the pop rate (random split; default {DEFAULT_WINDOW}; "
                        "0: none)")
    parser.add_argument("--temporal-landmarks", choices=["smoothed", "raw"], default="smoothed",
                        help="the window's driving landmarks: smoothed as animate smooths a driver (default) or the "
                             "stored per-frame ones")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="evaluate even on identities the checkpoint was trained on")
    parser.add_argument("--identity-split", default=None, metavar="FILE", help="with --part: the identity split the "
                        "dataset was prepared with (talkinghead prepare --split FILE)")
    parser.add_argument("--part", default=None, choices=("validation", "test"),
                        help="with --identity-split: refuse the dataset unless every person in it belongs to this "
                        "part of the split, and record the part; make choices on validation, read test once per "
                        "shipped model")
    parser.add_argument("--fid-weights", default=None, metavar="PATH",
                        help="pt_inception-2015-12-05-6726825d.pth (FID is reported unavailable without it)")
    parser.add_argument("--arcface-onnx", default=None, metavar="PATH", help="ArcFace ONNX model for CSIM "
                        "(default: dlib's descriptor)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the video choice and frame split")
    parser.add_argument("--study-frames", type=int, default=0, metavar="N", help="save N target frames per video "
                        "(real and each method's, PNG) for 'talkinghead study' (default 0: none)")
    add_set_option(parser, sections=TRAINED_MODEL_SECTIONS)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from talkinghead.evaluate import EvaluationSettings, evaluate, format_summary

    identity_split = None
    if (args.identity_split is None) != (args.part is None):
        raise ValueError("--part and --identity-split FILE go together: the part names people of that split")
    if args.identity_split is not None:
        from talkinghead.data.index import load_index
        from talkinghead.data.split import IdentitySplit, check_dataset_part

        identity_split = IdentitySplit.load(args.identity_split)
        check_dataset_part(load_index(args.data), identity_split, args.part)
    settings = EvaluationSettings(
        shots=tuple(args.shots), targets=args.targets, finetune_steps=args.finetune_steps,
        finetune_epochs=args.finetune_epochs, videos=args.videos, per_identity=args.per_identity,
        cross_identity=args.cross_identity, allow_overlap=args.allow_overlap, fid_weights=args.fid_weights,
        arcface_onnx=args.arcface_onnx, seed=args.seed, device=args.device, finetune_overrides=tuple(args.overrides),
        study_frames=args.study_frames, split=args.split, temporal_window=args.temporal_window,
        temporal_landmarks=args.temporal_landmarks,
        identity_part=args.part,
        identity_split_sha256=identity_split.sha256 if identity_split is not None else None)
    summary = evaluate(args.checkpoint, args.data, args.out, settings)
    print(format_summary(summary))
    return 0


def add_study(subparsers) -> None:
    parser = subparsers.add_parser(
        "study", help="the paper's user study (USER) over an evaluation's saved frames: serve it, or its results",
        description="Triplets of one person, two real frames from the person's other videos and one generated "
                    "(paper §4), from every method of the evaluation, baselines included; the rater picks the fake. "
                    "Each rater gets their own order and fake positions and sees a real frame at most twice. Needs "
                    "an evaluation run with --study-frames N and two or more videos per person. Answers go to "
                    "EVALUATION/study/answers.jsonl as they come (resumable). --results: USER accuracy per method "
                    "(T) with a 95% bootstrap interval over raters (the Wilson interval over answers beside it), "
                    "answers, raters, bad lines skipped, the protocol, a plot.")
    parser.add_argument("evaluation", metavar="EVALUATION", help="the --out folder of 'talkinghead evaluate'")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="serve the page on 127.0.0.1 (the default)")
    mode.add_argument("--static", default=None, metavar="DIR", help="write a folder that works from a file URL "
                      "instead (answers stay in the rater's browser until they download them as JSON lines)")
    mode.add_argument("--results", action="store_true", help="print and write the USER accuracy of the answers")
    parser.add_argument("--answers", nargs="+", default=[], metavar="FILE",
                        help="with --results: also these answer files (downloaded from static pages)")
    parser.add_argument("--port", type=int, default=7870, help="port to serve on (default 7870)")
    parser.add_argument("--per-row", type=int, default=None, metavar="N",
                        help="at most N triplets per method (T) (default: one per saved generated frame)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the triplets' real frames and order")
    parser.add_argument("--same-video-reals", action="store_true",
                        help="real frames from the generated frame's own video (other frames than its ground "
                        "truth), for an evaluation with one video per person (--per-identity 1). A different "
                        "protocol from the paper's, not comparable with its USER; study.json and the results "
                        "are labelled so")
    parser.set_defaults(func=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talkinghead import study

    folder = study.study_folder(args.evaluation)
    if args.results:
        chosen = study.load_study(folder)
        files = [folder / study.ANSWERS] if (folder / study.ANSWERS).is_file() else []
        answers = [a for path in [*files, *map(Path, args.answers)] for a in study.read_answers(path)]
        results = study.study_results(chosen, answers)
        print(study.format_results(results) + "\n" + "written: " +
              ", ".join(str(p) for p in study.write_results(results, folder).values()))
        return 0
    chosen = study.build_study(args.evaluation, seed=args.seed, per_row=args.per_row,
                               same_video_reals=args.same_video_reals)
    study.write_study(chosen, folder)
    if args.static:
        print(f"static study ({len(chosen.triplets)} triplets): open {study.write_static(chosen, args.static).as_uri()}"
              "; answers stay in the browser until downloaded")
        return 0
    study.StudyServer(chosen, folder / study.ANSWERS, port=args.port).serve_forever()
    return 0
