"""Presets, validation and overrides of the typed config."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from talkinghead.config import (
    PRESETS,
    Config,
    ConfigError,
    LossConfig,
    TrainConfig,
    apply_overrides,
    parse_override,
    preset,
)


@pytest.mark.parametrize("name", [*PRESETS, *(f"{name}-ff" for name in PRESETS), "paper-256-ft"])
def test_presets_build_validate_and_round_trip_through_json(name):
    config = preset(name)
    assert Config.from_json(config.to_json()) == config
    assert config.train.variant == ("FF" if name.endswith("-ff") else "FT")


def test_cpu_128_is_small_128_at_narrower_widths():
    small, cpu = preset("small-128"), preset("cpu-128")
    assert (cpu.model.min_channels, cpu.model.max_channels, cpu.model.embedding_dim) == (16, 64, 64)
    narrowed = dataclasses.replace(small.model, min_channels=16, max_channels=64, embedding_dim=64)
    assert cpu.model == narrowed
    assert (cpu.data, cpu.loss, cpu.train, cpu.finetune) == (small.data, small.loss, small.train, small.finetune)


def test_choice_fields_are_literals_validated_from_their_annotation():
    hints = typing.get_type_hints(TrainConfig)
    assert typing.get_args(hints["variant"]) == ("FT", "FF")
    assert typing.get_args(typing.get_type_hints(LossConfig)["feature_network"]) == ("vgg", "mobilenet-offline")
    bad = dataclasses.replace(preset("tiny-64"), loss=dataclasses.replace(LossConfig(), weights_version="v3"))
    with pytest.raises(ConfigError, match=r"loss.weights_version must be one of \['v1', 'v2'\], got 'v3'"):
        bad.validate()


def test_variant_is_case_insensitive_and_stored_upper_case():
    assert apply_overrides(preset("tiny-64"), ["train.variant=ff"]).train.variant == "FF"
    assert apply_overrides(preset("tiny-64-ff"), ["train.variant=Ft"]).train.variant == "FT"
    assert apply_overrides(preset("tiny-64"), ["train.mixed_precision=BF16"]).train.mixed_precision == "bf16"


@pytest.mark.parametrize(("item", "value"), [
    ("train.lr_generator=1", 1.0),  # float from an integer
    ("train.lr_generator=3e-4", 3e-4),
    ("train.steps=12", 12),
    ("train.channels_last=true", True),
    ("train.betas=[0.5, 0.9]", (0.5, 0.9)),
    ("train.betas=0.5,0.9", (0.5, 0.9)),
    ("loss.vgg19_weight=null", None),
    ("loss.vgg19_weight=2", 2.0),
    ("loss.vgg19_weights=007.pth", "007.pth"),
    ("loss.vgg19_weights=123", "123"),  # a path stays the text typed
    ("train.init_from=null", None),
])
def test_override_values_become_the_fields_type(item, value):
    section, name, _ = parse_override(item)
    got = getattr(getattr(apply_overrides(preset("tiny-64"), [item]), section), name)
    assert got == value and type(got) is type(value)


def test_feed_forward_suffix_selects_the_variant_without_matching_loss():
    assert preset("tiny-64-ff").train.variant == "FF"
    assert preset("tiny-64").train.variant == "FT"


def test_paper_defaults_match_the_paper():
    config = preset("paper-256")
    assert config.model.image_size == 256 and config.model.embedding_dim == 512
    assert (config.model.min_channels, config.model.max_channels) == (64, 512)
    assert config.data.frames_per_episode == 8
    assert (config.train.lr_generator, config.train.lr_discriminator) == (5e-5, 2e-4)
    assert config.train.discriminator_steps == 2
    weights = config.loss.resolved_weights()
    assert (weights["vgg19"], weights["vggface"], weights["match"], weights["feature_matching"]) == (
        1e-2, 2e-3, 80.0, 10.0)
    assert config.finetune.epochs == 40 and config.finetune.batch_size == 8


def test_v2_weights_are_a_documented_option():
    weights = apply_overrides(preset("paper-256"), ["loss.weights_version=v2"]).loss.resolved_weights()
    assert (weights["vgg19"], weights["vggface"], weights["match"]) == (1.5e-1, 2.5e-2, 10.0)


def test_overrides_parse_types_and_name_bad_fields():
    config = apply_overrides(preset("tiny-64"), ["train.batch_size=3", "train.betas=[0.5, 0.9]",
                                                 "loss.feature_network=mobilenet-offline"])
    assert config.train.batch_size == 3 and config.train.betas == (0.5, 0.9)
    with pytest.raises(ConfigError, match="batch_sise"):
        apply_overrides(config, ["train.batch_sise=3"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        apply_overrides(config, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="integer"):
        apply_overrides(config, ["train.steps=ten"])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge-1024")


def test_a_saved_config_with_a_value_of_the_wrong_type_names_the_field():
    values = preset("tiny-64").to_dict()
    values["train"]["init_from"] = 5
    with pytest.raises(ConfigError, match=r"^train.init_from must be a string or null, got 5$"):
        Config.from_dict(values)
