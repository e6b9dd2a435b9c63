"""Fréchet distance and FID (Heusel et al. 2017), the paper's realism metric (§4).

``frechet_distance`` is this project's own implementation of

    d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½)

computing Tr((S1 S2)^½) as the sum of square roots of the eigenvalues of the symmetric PSD matrix
S1^½ S2 S1^½ (same spectrum as S1 S2), which avoids the complex round-off of a general matrix square root.

``compute_fid`` embeds images with the standard FID Inception network (the TF 2015-12-05 graph ported by
``pytorch-fid``, optional extra ``fid``). Its weights (``pt_inception-2015-12-05-6726825d.pth``) come from a path
the user gives, or torch's hub cache, or a download when allowed. When the package or the weights cannot be had
the result says "unavailable" and why: FID is never approximated by another network and never made up.
pytorch-fid needs torchvision, which does not import beside this project's CPU torch on some machines; that also
gives an "unavailable" result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

logger = logging.getLogger(__name__)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"


@dataclass(frozen=True)
class FidResult:
    """An FID value, or the reason it is unavailable (``value`` is None then)."""

    value: float | None
    reason: str = ""
    num_real: int = 0
    num_fake: int = 0

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict:
        if self.available:
            return {"value": self.value, "num_real": self.num_real, "num_fake": self.num_fake}
        return {"value": None, "unavailable": self.reason}


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, N - 1) of features [N, D]."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"feature_statistics: need features [N >= 2, D], got {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape} "
                         "do not describe two Gaussians of one dimension")
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # S1^½ S2 S1^½: symmetric PSD, same eigenvalues as S1 S2
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt_product = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product)


def frechet_distance_of_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between two feature sets [N, D] and [M, D]."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def default_weights_path() -> Path:
    """Where torch's hub keeps the FID Inception weights after pytorch-fid downloaded them."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


class FidUnavailable(RuntimeError):
    """FID cannot be computed here (missing package or weights); the message says what to do."""


class FidInception:
    """pytorch-fid's FID Inception (pool3, 2048-d) with its weights from a file path.

    Raises ``FidUnavailable`` when pytorch-fid (or torchvision under it) cannot be imported or no weights are found.
    """

    def __init__(self, weights_path: str | Path | None = None, allow_download: bool = False,
                 device: str = "cpu") -> None:
        import torch

        try:
            from pytorch_fid import inception as fid_inception
        except Exception as error:  # torchvision may fail with RuntimeError/AttributeError, not only ImportError
            raise FidUnavailable(f"pytorch-fid cannot be imported ({type(error).__name__}: {error}); "
                                 "install the 'fid' extra with a torchvision that matches torch") from error
        if weights_path is None and default_weights_path().is_file():
            weights_path = default_weights_path()
        if weights_path is not None:
            weights_path = Path(weights_path)
            if not weights_path.is_file():
                raise FidUnavailable(f"FID Inception weights not found at {weights_path}")
            from talkinghead.perceptual_weights import sha256_of

            if not sha256_of(weights_path).startswith(FID_WEIGHTS_SHA256_PREFIX):
                raise FidUnavailable(f"{weights_path} is not {FID_WEIGHTS_FILE} (sha256 does not start with "
                                     f"{FID_WEIGHTS_SHA256_PREFIX}); FID needs exactly the standard weights")
            state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
            # pytorch-fid always fetches its weights by URL; hand it the file instead.
            with mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
                model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        elif allow_download:
            try:
                model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            except Exception as error:
                raise FidUnavailable(f"downloading the FID Inception weights failed ({error}); "
                                     f"pass the path of {FID_WEIGHTS_FILE}") from error
        else:
            raise FidUnavailable(f"no FID Inception weights: pass the path of {FID_WEIGHTS_FILE} "
                                 f"(e.g. --fid-weights), put it at {default_weights_path()}, or allow the download")
        self.model = model.eval().to(device)
        self.device = device

    def features(self, images: Iterable[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Pool3 features [N, 2048] of uint8 RGB images (resized to 299x299 by the network)."""
        import torch

        def embed(batch: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255.0)  # [B, 3, H, W] in [0, 1]
            with torch.no_grad():
                output = self.model(tensor.to(self.device))[0]  # [B, 2048, 1, 1]
            return output.flatten(1).cpu().double().numpy()

        return features_in_batches(images, batch_size, embed, 2048)


def features_in_batches(images: Iterable[np.ndarray], batch_size: int, embed: Callable[[np.ndarray], np.ndarray],
                        dim: int) -> np.ndarray:
    """``embed`` over ``images`` taken ``batch_size`` at a time ([B, H, W, 3] -> [B, dim]), concatenated: [N, dim];
    [0, dim] for no images."""
    batches, batch = [], []
    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            batches.append(embed(np.stack(batch)))
            batch.clear()
    if batch:
        batches.append(embed(np.stack(batch)))
    return np.concatenate(batches) if batches else np.zeros((0, dim))


def compute_fid(real_images: Iterable[np.ndarray], fake_images: Iterable[np.ndarray],
                weights_path: str | Path | None = None, allow_download: bool = False, device: str = "cpu",
                network: FidInception | None = None) -> FidResult:
    """FID between two sets of uint8 RGB images, or an unavailable result that says why.

    Pass ``network`` to reuse one loaded Inception across many calls (one per method and T).
    """
    if network is None:
        try:
            network = FidInception(weights_path, allow_download=allow_download, device=device)
        except FidUnavailable as error:
            logger.warning("FID unavailable: %s", error)
            return FidResult(value=None, reason=str(error))
    real = network.features(real_images)
    fake = network.features(fake_images)
    if len(real) < 2 or len(fake) < 2:
        return FidResult(value=None, reason=f"FID needs at least 2 images per set (got {len(real)}, {len(fake)})",
                         num_real=len(real), num_fake=len(fake))
    return FidResult(value=frechet_distance_of_features(real, fake), num_real=len(real), num_fake=len(fake))
