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
