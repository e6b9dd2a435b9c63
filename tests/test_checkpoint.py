"""Checkpoints: bit-exact round trip, header metadata, and clear errors for anything that does not match."""

from __future__ import annotations

import pytest
import torch

from talkinghead import __version__
from talkinghead.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    model_state,
    prefixed,
    save_checkpoint,
)
from talkinghead.config import preset
from talkinghead.models import Discriminator, Embedder, Generator


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    cfg = preset("tiny-64").model
    return Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=3)


def all_state(embedder, generator, discriminator) -> dict[str, torch.Tensor]:
    return {**prefixed("embedder.", model_state(embedder)), **prefixed("generator.", model_state(generator)),
            **prefixed("discriminator.", model_state(discriminator))}


def test_round_trip_is_bit_exact_with_config_kind_and_metadata(tmp_path, tiny_models):
    config = preset("tiny-64")
    embedder, generator, discriminator = tiny_models
    tensors = all_state(*tiny_models)
    tensors["step"] = torch.tensor(123)
    path = save_checkpoint(tmp_path / "run" / "last.safetensors", tensors, config, kind="training",
                           metadata={"step": 123, "note": "ψ̂"})
    assert [p.name for p in path.parent.iterdir()] == ["last.safetensors"]  # no temporary file left
    checkpoint = load_checkpoint(path, expected_kind="training", expected_model=config.model)
    assert checkpoint.config == config and checkpoint.kind == "training"
    assert checkpoint.metadata == {"step": 123, "note": "ψ̂", "variant": "FT"}  # the variant is always recorded
    assert checkpoint.code_version == __version__
    assert set(checkpoint.tensors) == set(tensors)
    for name, tensor in tensors.items():
        assert checkpoint.tensors[name].dtype == tensor.dtype and torch.equal(checkpoint.tensors[name], tensor), name
    torch.manual_seed(1)
    fresh = Generator(config.model)
    load_model_state(fresh, checkpoint.tensors, prefix="generator.", source=path)
    for name, tensor in model_state(generator).items():
        assert torch.equal(model_state(fresh)[name], tensor), name
    landmark_images = torch.rand(1, 3, 64, 64) * 2 - 1
    psi = torch.randn(1, generator.num_adain_params)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(landmark_images, psi), generator.eval()(landmark_images, psi))


def test_wrong_kind_and_other_preset_name_what_does_not_match(tmp_path, tiny_models):
    path = save_checkpoint(tmp_path / "c.safetensors", model_state(tiny_models[1]), preset("tiny-64"), kind="export")
    with pytest.raises(CheckpointError, match="'export' checkpoint, expected 'training'"):
        load_checkpoint(path, expected_kind="training")
    with pytest.raises(CheckpointError, match=r"model.image_size: 64 .* 128 expected"):
        load_checkpoint(path, expected_model=preset("small-128").model)
    small = Generator(preset("small-128").model)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_model_state(small, load_checkpoint(path).tensors, source=path)


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_models):
    generator = tiny_models[1]
    state = model_state(generator)
    del state["output_conv.weight"]
    state["extra.weight"] = torch.zeros(2)
    path = save_checkpoint(tmp_path / "c.safetensors", state, preset("tiny-64"), kind="export")
    expected = r"missing keys \['output_conv.weight'\].*unexpected keys \['extra.weight'\]"
    with pytest.raises(CheckpointError, match=expected):
        load_model_state(generator, load_checkpoint(path).tensors, source=path)


def test_truncated_or_foreign_file_is_a_clear_error(tmp_path, tiny_models):
    path = save_checkpoint(tmp_path / "c.safetensors", model_state(tiny_models[0]), preset("tiny-64"), kind="export")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(garbage)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a talkinghead checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_every_checkpoint_records_its_variant_and_refuses_a_contradiction(tmp_path):
    ff = preset("tiny-64-ff")
    path = save_checkpoint(tmp_path / "ff.safetensors", {"x": torch.zeros(1)}, ff, kind="export")
    assert load_checkpoint(path).metadata == {"variant": "FF"}
    with pytest.raises(CheckpointError, match="contradicts"):
        save_checkpoint(tmp_path / "bad.safetensors", {"x": torch.zeros(1)}, ff, kind="export",
                        metadata={"variant": "FT"})
