"""Presets, validation and overrides of the typed config."""

from __future__ import annotations

import pytest

from talkinghead.config import Config, ConfigError, apply_overrides, preset


@pytest.mark.parametrize("name", ["paper-256", "small-128", "tiny-64", "tiny-64-ff", "paper-256-ft"])
def test_presets_build_validate_and_round_trip_through_json(name):
    config = preset(name)
    assert Config.from_json(config.to_json()) == config


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
