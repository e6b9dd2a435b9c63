"""What several `talkinghead` subcommands share: the ``--preset``/``--set`` options, checking ``--set`` items, the
resolved config and the torch device. Its own room, below `cli` and `cli_evaluation`, so neither imports the other
for them."""

from __future__ import annotations

import argparse

from talkinghead.config import ConfigError


def add_common_config_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    parser.add_argument("--preset", default=default_preset,
                        help="named preset: paper-256, small-128, cpu-128, tiny-64 (append -ff for the feed-forward "
                        "variant)")
    add_set_option(parser)


def add_set_option(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None) -> None:
    """The one ``--set SECTION.FIELD=VALUE`` option (repeatable, into ``args.overrides``). ``sections``: the config
    sections this command may change (None: all). `main` checks every item (field, type) before the command runs."""
    if sections is None:
        metavar, scope = "SECTION.FIELD=VALUE", "any config field, e.g. --set train.batch_size=4"
    else:
        metavar = "|".join(f"{section}.FIELD" for section in sections) + "=VALUE"
        scope = (f"only {', '.join(section + '.*' for section in sections)} fields, e.g. --set "
                 f"{sections[0]}.{SET_EXAMPLES.get(sections[0], 'FIELD=VALUE')}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar=metavar,
                        help=f"override {scope} (repeatable; the value must fit the field's type)")
    parser.set_defaults(override_sections=sections)


SET_EXAMPLES = {"finetune": "lr_generator=1e-3", "model": "source_blend=smooth"}
TRAINED_MODEL_SECTIONS = ("finetune", "model")
"""What ``--set`` may change on a trained model: fine-tuning, and how the warp generator is run
(`config.INFERENCE_MODEL_FIELDS`)."""


def check_overrides(args: argparse.Namespace) -> None:
    """Every ``--set`` item names a field the command may change, with a value of the field's type (else a
    one-line `ConfigError` naming the field and the type expected, exit status 2)."""
    from talkinghead.config import INFERENCE_MODEL_FIELDS, parse_override

    sections = getattr(args, "override_sections", None)
    for item in getattr(args, "overrides", []):
        section, name, _ = parse_override(item)
        if sections is not None and section not in sections:
            raise ConfigError(f"--set {item}: this command changes only "
                              f"{', '.join(name + '.*' for name in sections)} fields")
        if sections is not None and section == "model" and name not in INFERENCE_MODEL_FIELDS:
            raise ConfigError(f"--set {item}: of a trained model's settings only how the warp generator is run "
                              f"can change (model.{', model.'.join(INFERENCE_MODEL_FIELDS)})")


def resolve_config(args: argparse.Namespace):
    from talkinghead.config import apply_overrides, preset

    return apply_overrides(preset(args.preset), args.overrides)


def device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")
