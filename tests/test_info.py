"""`talkinghead info`: resolved config and per-network parameter counts and FLOPs as JSON."""

from __future__ import annotations

import json

import torch

from talkinghead.cli import main
from talkinghead.config import preset
from talkinghead.models import Discriminator, Embedder, Generator


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_info_prints_parseable_json_with_counts_and_flops(capsys):
    assert main(["info", "--preset", "tiny-64"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["preset"] == "tiny-64"
    assert report["config"]["model"]["image_size"] == 64
    cfg = preset("tiny-64").model
    networks = report["networks"]
    assert networks["embedder"]["parameters"] == count(Embedder(cfg))
    generator = Generator(cfg)
    assert networks["generator"]["parameters"] == count(generator)
    assert networks["generator"]["num_adain_params"] == generator.num_adain_params
    discriminator = Discriminator(cfg, num_videos=1)
    assert networks["discriminator"]["parameters_convolutional"] == count(discriminator.blocks) + count(
        discriminator.attention)
    # FLOPs: a 3x3 conv alone at 64x64 already costs millions; G's first conv 3->16: 2*64*64*27*16.
    for name in ("embedder", "generator", "discriminator"):
        assert networks[name]["flops_per_frame"] > 2 * 64 * 64 * 27 * 16


def test_info_overrides_change_the_counts(capsys):
    assert main(["info", "--preset", "tiny-64", "--set", "model.generator_res_blocks=3"]) == 0
    more = json.loads(capsys.readouterr().out)["networks"]["generator"]
    assert main(["info", "--preset", "tiny-64"]) == 0
    base = json.loads(capsys.readouterr().out)["networks"]["generator"]
    # One more AdaIN block at the 32-channel bottleneck: two 3x3 convs (one bias) and 4 x 32 more rows of P (N=64).
    assert more["num_adain_params"] - base["num_adain_params"] == 4 * 32
    assert more["parameters"] - base["parameters"] == 2 * 9 * 32 * 32 + 32 + 4 * 32 * (64 + 1)
