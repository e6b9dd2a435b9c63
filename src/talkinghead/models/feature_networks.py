"""Frozen feature networks for the content loss L_CNT (paper Eq. 3, paper-notes §2.1).

Three networks, each taking images in [-1, 1] ([B, 3, H, W], RGB) and returning a list of activations:

- `VGG19Features`: torchvision's ``vgg19`` layout (``features.N.weight``); the post-ReLU outputs of
  ``features`` indices 1, 6, 11, 20, 29 = relu1_1 ... relu5_1 (the paper's "Conv1,6,11,20,29").
- `VGGFaceFeatures`: VGG16-Face in the widely shared converted layout (``vgg_face_dag.pth``: keys
  ``conv1_1.weight`` ... ``conv5_3.bias``, ``fc6``/``fc7``/``fc8`` ignored); relu1_1 ... relu5_1 (the paper's
  "Conv1,6,11,18,25").
- `MobileNetV2Features`: torchvision's ``mobilenet_v2`` layout; outputs of ``features`` blocks 1, 3, 6, 13, 17
  (strides 2, 4, 8, 16, 32) — the offline stand-in, not the paper.

Input normalization is part of each network (`InputNormalization`) and must be the one its weights were trained
with: the paper's Caffe-trained VGGs take [0, 255], BGR (VGG19) or RGB (VGGFace), mean-subtracted; torchvision's
networks take [0, 1] RGB with ImageNet mean/std. Torch only; weights are loaded elsewhere
(`talkinghead.perceptual_weights`).
"""

from __future__ import annotations

import torch
from torch import nn

# Caffe ILSVRC VGG: BGR order, means in BGR.
CAFFE_VGG19_MEAN_BGR = (103.939, 116.779, 123.68)
# vgg_face_dag (converted from MatConvNet's VGG-Face): RGB order, means in RGB, std 1.
VGGFACE_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
# torchvision ImageNet models: RGB in [0, 1], mean/std normalized.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

VGG19_LAYERS = (1, 6, 11, 20, 29)
"""Indices into torchvision's ``vgg19().features`` whose outputs L_CNT compares (relu1_1 ... relu5_1)."""
MOBILENET_V2_BLOCKS = (1, 3, 6, 13, 17)
"""Indices into torchvision's ``mobilenet_v2().features`` whose outputs the offline content loss compares."""


class InputNormalization(nn.Module):
    """[-1, 1] RGB -> the input a pretrained network was trained on.

    ``caffe_bgr``: [0, 255], BGR, minus ``mean`` (given in BGR).  ``caffe_rgb``: [0, 255], RGB, minus ``mean``.
    ``imagenet``: [0, 1], RGB, (x - mean) / std.
    """

    def __init__(self, kind: str, mean: tuple[float, float, float], std: tuple[float, float, float] = (1.0, 1.0, 1.0)):
        super().__init__()
        if kind not in ("caffe_bgr", "caffe_rgb", "imagenet"):
            raise ValueError(f"unknown input normalization {kind!r}; use caffe_bgr, caffe_rgb or imagenet")
        self.kind = kind
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        unit = (images + 1.0) * 0.5  # [-1, 1] -> [0, 1]
        if self.kind == "imagenet":
            return (unit - self.mean) / self.std
        pixels = unit * 255.0
        if self.kind == "caffe_bgr":
            pixels = pixels.flip(1)  # RGB -> BGR
        return (pixels - self.mean) / self.std


def _vgg_features(config: tuple[int | str, ...]) -> nn.Sequential:
    """torchvision's ``make_layers``: 3x3 conv + ReLU per number, 2x2 max-pool per "M"."""
    layers: list[nn.Module] = []
    channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


VGG19_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                       512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
"""torchvision's VGG19 "E" configuration: output channels per 3x3 conv, "M" per 2x2 max-pool."""


class _FrozenFeatures(nn.Module):
    """Common behaviour: always in eval mode, parameters never trained."""

    def train(self, mode: bool = True) -> _FrozenFeatures:
        return super().train(False)

    def freeze(self) -> _FrozenFeatures:
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()


class PixelFeatures(_FrozenFeatures):
    """The image itself as the only "feature": with `losses.content_losses` this is a pixel L1 term.

    Not in the paper (the bilayer follow-up of the same lab adds pixel L1 with weight 10); off in every paper
    preset, used by the CPU demo where minutes of training must learn colours fast."""

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [images]


class VGG19Features(_FrozenFeatures):
    """VGG19 conv part, cut after relu5_1 (features[29]); state-dict keys as torchvision (``features.N.*``).

    ``normalization``: the input its weights were trained on, ``imagenet`` (torchvision's) or ``caffe_bgr``
    (Caffe's); `talkinghead.perceptual_weights.load_vgg19` picks it from the weight file."""

    def __init__(self, normalization: str = "imagenet", layers: tuple[int, ...] = VGG19_LAYERS):
        super().__init__()
        if normalization == "imagenet":
            self.normalize = InputNormalization("imagenet", IMAGENET_MEAN_RGB, IMAGENET_STD_RGB)
        elif normalization == "caffe_bgr":
            self.normalize = InputNormalization("caffe_bgr", CAFFE_VGG19_MEAN_BGR)
        else:
            raise ValueError(f"VGG19 input normalization must be imagenet or caffe_bgr, got {normalization!r}")
        self.layers = tuple(layers)
        self.features = _vgg_features(VGG19_CONFIG)[: max(self.layers) + 1]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        outputs = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.layers:
                outputs.append(x)
        return outputs


_VGGFACE_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGGFaceFeatures(_FrozenFeatures):
    """VGG16-Face with ``vgg_face_dag.pth`` keys (``conv1_1`` ... ``conv5_3``); returns relu1_1 ... relu5_1.

    In the equivalent ``nn.Sequential`` numbering these are layers 1, 6, 11, 18, 25 (the paper's indices).
    """

    def __init__(self):
        super().__init__()
        self.normalize = InputNormalization("caffe_rgb", VGGFACE_MEAN_RGB)
        channels = 3
        for block, (width, count) in enumerate(_VGGFACE_BLOCKS, start=1):
            for conv in range(1, count + 1):
                if block == 5 and conv > 1:
                    break  # relu5_1 is the last activation the loss uses
                self.add_module(f"conv{block}_{conv}", nn.Conv2d(channels, width, kernel_size=3, padding=1))
                channels = width
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        outputs = []
        for block, (_, count) in enumerate(_VGGFACE_BLOCKS, start=1):
            if block > 1:
                x = self.pool(x)
            for conv in range(1, count + 1):
                x = torch.relu(getattr(self, f"conv{block}_{conv}")(x))
                if conv == 1:
                    outputs.append(x)  # relu{block}_1
                if block == 5:
                    return outputs
        return outputs


class _ConvBNReLU6(nn.Sequential):
    """torchvision ``Conv2dNormActivation``: keys ``0.weight`` (conv), ``1.*`` (BN)."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU6(inplace=False),
        )


class _InvertedResidual(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, expansion: int):
        super().__init__()
        hidden = inputs * expansion
        self.use_residual = stride == 1 and inputs == outputs
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_ConvBNReLU6(inputs, hidden, kernel=1))
        layers += [
            _ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, outputs, 1, bias=False),  # linear bottleneck
            nn.BatchNorm2d(outputs),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, first stride s), torchvision's MobileNetV2 width 1.0
_MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2Features(_FrozenFeatures):
    """ImageNet MobileNetV2 conv part (torchvision keys ``features.N.*``), cut after the last block used."""

    def __init__(self, blocks: tuple[int, ...] = MOBILENET_V2_BLOCKS):
        super().__init__()
        self.normalize = InputNormalization("imagenet", IMAGENET_MEAN_RGB, IMAGENET_STD_RGB)
        self.blocks = tuple(blocks)
        layers: list[nn.Module] = [_ConvBNReLU6(3, 32, stride=2)]
        channels = 32
        for expansion, width, repeats, stride in _MOBILENET_V2_SETTINGS:
            for i in range(repeats):
                layers.append(_InvertedResidual(channels, width, stride if i == 0 else 1, expansion))
                channels = width
        layers.append(_ConvBNReLU6(channels, 1280, kernel=1))
        self.features = nn.Sequential(*layers[: max(self.blocks) + 1])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        outputs = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.blocks:
                outputs.append(x)
        return outputs
