"""Building blocks shared by the embedder, generator and discriminator (paper §3.4).

* Spectral normalization (Miyato et al. 2018) on every convolution and linear layer ("we use spectral
  normalization for all convolutional and fully connected layers in all the networks"): `SNConv2d`,
  `SNLinear`. One power iteration per training forward; in eval mode without autograd the normalized
  weight W / σ(W) is computed once and cached until the weight or the power-iteration state changes.
* Instance norm with its own learned affine (G's encoder) and AdaIN whose affine coefficients come from
  outside (ψ̂ = P ê), both computed as one fused ``x * scale + shift``.
* BigGAN-style pre-activation residual blocks: `ResidualDown` (E, V, G's encoder), `ResidualUp` and
  `ResidualAdaIN` (G's decoder and bottleneck), `ResidualBlock` (V's extra 4x4 block).
* `SelfAttention` (SAGAN, in BigGAN's form).

Block shapes are chosen with the FLOP count in view while keeping BigGAN's parameters per block (two 3x3
convolutions + a learnable 1x1 skip): a down block applies its first convolution at the input resolution
and its second after the 2x2 average pool; an up block applies its first convolution at the input
resolution and its second after the nearest-neighbour upsampling. Relative to BigGAN's order (both
convolutions at the higher resolution) this spends 4x fewer FLOPs on one of the two convolutions of every
resampling block, which is what dominates the cost at 256x256 (benchmarks/cases/models.py). Exact
rewrites save more: conv3x3 followed by avgpool2 is one 4x4 stride-2 convolution (0.44x the FLOPs), and
the skip's 1x1 convolution commutes with pooling and nearest upsampling, so it runs at the low resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SPECTRAL_NORM_EPS = 1e-12
INSTANCE_NORM_EPS = 1e-5


class _SpectralNormMixin:
    """W / σ(W) with σ estimated by power iteration (buffers ``sn_u`` [out], ``sn_v`` [in * k * k])."""

    weight: nn.Parameter
    training: bool

    def _init_spectral_norm(self, init_iterations: int = 15) -> None:
        out_features = self.weight.shape[0]
        in_features = self.weight[0].numel()
        device, dtype = self.weight.device, self.weight.dtype
        u = F.normalize(torch.randn(out_features, device=device, dtype=dtype), dim=0, eps=SPECTRAL_NORM_EPS)
        v = F.normalize(torch.randn(in_features, device=device, dtype=dtype), dim=0, eps=SPECTRAL_NORM_EPS)
        self.register_buffer("sn_u", u)
        self.register_buffer("sn_v", v)
        self._sn_cache: tuple[tuple, torch.Tensor] | None = None
        if self.weight.device.type != "meta":
            with torch.no_grad():
                for _ in range(init_iterations):
                    self._power_iteration()

    def _power_iteration(self) -> None:
        weight = self.weight.detach().reshape(self.weight.shape[0], -1)
        v = F.normalize(weight.t().mv(self.sn_u), dim=0, eps=SPECTRAL_NORM_EPS)
        u = F.normalize(weight.mv(v), dim=0, eps=SPECTRAL_NORM_EPS)
        self.sn_u.copy_(u)
        self.sn_v.copy_(v)

    def _divide_by_sigma(self) -> torch.Tensor:
        weight = self.weight
        sigma = torch.dot(self.sn_u, weight.reshape(weight.shape[0], -1).mv(self.sn_v))  # σ = uᵀ W v
        return weight / sigma

    def normalized_weight(self) -> torch.Tensor:
        """W / σ(W). Training: one power-iteration step first. Eval without grad: cached."""
        if self.training:
            with torch.no_grad():
                self._power_iteration()
            return self._divide_by_sigma()
        if torch.is_grad_enabled():
            return self._divide_by_sigma()
        key = (self.weight.data_ptr(), self.weight._version, self.sn_u.data_ptr(), self.sn_u._version,
               self.sn_v._version, self.weight.dtype, self.weight.device, self.weight.stride())
        if self._sn_cache is None or self._sn_cache[0] != key:
            self._sn_cache = (key, self._divide_by_sigma())
        return self._sn_cache[1]

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), channels_last: drop the cached weight
        self._sn_cache = None
        return super()._apply(fn, recurse)  # type: ignore[misc]


class SNConv2d(_SpectralNormMixin, nn.Conv2d):
    """A spectrally normalized 2-D convolution (state-dict keys: weight, bias, sn_u, sn_v)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self._init_spectral_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class SNLinear(_SpectralNormMixin, nn.Linear):
    """A spectrally normalized linear layer (state-dict keys: weight, bias, sn_u, sn_v)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._init_spectral_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


def adaptive_instance_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                           eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """AdaIN: ``scale * (x - μ(x)) / σ(x) + shift`` with ``scale``, ``shift`` [B, C] from outside (ψ̂).

    μ, σ: per sample and channel over H, W (biased variance). Computed by the fused batch-norm kernel
    (statistics, normalization and affine in one call): instance norm of sample b is batch norm of
    [1, C, H, W]; for a contiguous NCHW batch [B, C, H, W] -> [1, B*C, H, W] is a free view, a
    channels-last batch is normalized sample by sample (it has no such view).
    """
    batch, num_channels = x.shape[:2]
    if batch == 1 or x.is_contiguous():
        flat = x.reshape(1, batch * num_channels, *x.shape[2:])
        out = F.batch_norm(flat, None, None, scale.reshape(-1), shift.reshape(-1), True, 0.0, eps)
        return out.reshape(x.shape)
    return torch.cat([F.batch_norm(x[b:b + 1], None, None, scale[b], shift[b], True, 0.0, eps)
                      for b in range(batch)])


class InstanceNorm(nn.Module):
    """Plain (non-adaptive) instance norm with its own learned affine (G's landmark encoder)."""

    def __init__(self, channels: int, eps: float = INSTANCE_NORM_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        return adaptive_instance_norm(x, self.weight.expand(batch, -1), self.bias.expand(batch, -1), self.eps)


class AdaptiveInstanceNorm(nn.Module):
    """AdaIN marker module: no parameters; consumes ``2 * channels`` coefficients [scale | shift] of ψ̂."""

    def __init__(self, channels: int, eps: float = INSTANCE_NORM_EPS) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps

    @property
    def num_params(self) -> int:
        return 2 * self.channels

    def forward(self, x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        scale, shift = coefficients.split(self.channels, dim=1)  # [B, 2C] -> 2 x [B, C]
        return adaptive_instance_norm(x, scale, shift, self.eps)


def _relu(x: torch.Tensor, inplace: bool) -> torch.Tensor:
    return F.relu_(x) if inplace else F.relu(x)


class ResidualDown(nn.Module):
    """Pre-activation residual down block (BigGAN D block; plain IN when ``normalize``).

    main: [IN] - ReLU - conv3x3 (in -> out) - avgpool2 - [IN] - ReLU - conv3x3 (out -> out)
          (conv3x3 - avgpool2 runs as the equivalent 4x4 stride-2 convolution, see `_convolve_and_pool`)
    skip: avgpool2 - conv1x1 (in -> out; learnable even when in == out, as BigGAN's resampling blocks)
    ``preactivate=False`` for a network's first block, whose input is an image (no norm/ReLU before it).
    [B, in, H, W] -> [B, out, H/2, W/2]
    """

    def __init__(self, in_channels: int, out_channels: int, normalize: bool, preactivate: bool = True) -> None:
        super().__init__()
        self.preactivate = preactivate
        self.norm1 = InstanceNorm(in_channels) if normalize and preactivate else None
        self.conv1 = SNConv2d(in_channels, out_channels, 3, bias=not normalize)
        self.norm2 = InstanceNorm(out_channels) if normalize else None
        self.conv2 = SNConv2d(out_channels, out_channels, 3)
        self.skip = SNConv2d(in_channels, out_channels, 1)
        self._pooled_kernel: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.preactivate:
            h = _relu(self.norm1(h), inplace=True) if self.norm1 is not None else F.relu(h)
        h = self._convolve_and_pool(h)
        h = self.norm2(h) if self.norm2 is not None else h
        h = self.conv2(F.relu_(h))
        return h.add_(self.skip(F.avg_pool2d(x, 2)))


    def _convolve_and_pool(self, x: torch.Tensor) -> torch.Tensor:
        """avgpool2(conv3x3(x)) computed exactly as one 4x4 convolution with stride 2 (0.44x the FLOPs).

        K4[r, s] = 1/4 Σ_{a,b ∈ {0,1}} K3[r - a, s - b]: the 3x3 kernel averaged over the four pooled
        positions. In eval mode without autograd the 4x4 kernel is kept while the normalized 3x3 one is.
        """
        weight = self.conv1.normalized_weight()  # [out, in, 3, 3]
        if self._pooled_kernel is not None and self._pooled_kernel[0] is weight:
            kernel = self._pooled_kernel[1]
        else:
            kernel = sum(F.pad(weight, (b, 1 - b, a, 1 - a)) for a in (0, 1) for b in (0, 1)) * 0.25
            cacheable = not self.training and not torch.is_grad_enabled()
            self._pooled_kernel = (weight, kernel) if cacheable else None
        return F.conv2d(x, kernel, self.conv1.bias, stride=2, padding=1)


class ResidualBlock(nn.Module):
    """Pre-activation residual block without normalization, same resolution (V's extra block at 4x4).

    main: ReLU - conv3x3 - ReLU - conv3x3; skip: identity (conv1x1 when the channels change).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = SNConv2d(in_channels, out_channels, 3)
        self.conv2 = SNConv2d(out_channels, out_channels, 3)
        self.skip = SNConv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu_(self.conv1(F.relu(x))))
        return h.add_(x if self.skip is None else self.skip(x))


class ResidualAdaIN(nn.Module):
    """G's bottleneck block: AdaIN - ReLU - conv3x3 - AdaIN - ReLU - conv3x3, identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = AdaptiveInstanceNorm(channels)
        self.conv1 = SNConv2d(channels, channels, 3, bias=False)
        self.norm2 = AdaptiveInstanceNorm(channels)
        self.conv2 = SNConv2d(channels, channels, 3)

    @property
    def num_adain_params(self) -> int:
        return self.norm1.num_params + self.norm2.num_params

    def forward(self, x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        c1, c2 = coefficients.split([self.norm1.num_params, self.norm2.num_params], dim=1)
        h = self.conv1(F.relu_(self.norm1(x, c1)))
        h = self.conv2(F.relu_(self.norm2(h, c2)))
        return h.add_(x)


class ResidualUp(nn.Module):
    """Pre-activation residual up block with AdaIN (BigGAN G block).

    main: AdaIN - ReLU - conv3x3 (in -> out) - AdaIN - ReLU - upsample2 (nearest) - conv3x3 (out -> out)
    skip: conv1x1 (in -> out; learnable even when in == out, as BigGAN's resampling blocks) - upsample2
    AdaIN's statistics are invariant to nearest upsampling, so the second AdaIN and ReLU run before it.
    [B, in, H, W] -> [B, out, 2H, 2W]
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = AdaptiveInstanceNorm(in_channels)
        self.conv1 = SNConv2d(in_channels, out_channels, 3, bias=False)
        self.norm2 = AdaptiveInstanceNorm(out_channels)
        self.conv2 = SNConv2d(out_channels, out_channels, 3)
        self.skip = SNConv2d(in_channels, out_channels, 1)

    @property
    def num_adain_params(self) -> int:
        return self.norm1.num_params + self.norm2.num_params

    def forward(self, x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        c1, c2 = coefficients.split([self.norm1.num_params, self.norm2.num_params], dim=1)
        h = self.conv1(F.relu_(self.norm1(x, c1)))
        h = F.relu_(self.norm2(h, c2))
        h = self.conv2(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return h.add_(F.interpolate(self.skip(x), scale_factor=2.0, mode="nearest"))


class SelfAttention(nn.Module):
    """SAGAN self-attention in BigGAN's form: x + γ · o(softmax(θ(x)ᵀ φ(x)) g(x)).

    θ, φ: 1x1 conv C -> C/8; g: C -> C/2; o: C/2 -> C (all spectrally normalized, no bias);
    φ and g are 2x2 max-pooled (4x fewer keys). γ starts at 0, so the block starts as the identity.
    Parameters: 1.25 C² (the same as SAGAN's C/8, C/8, C -> C form).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.key_channels = max(channels // 8, 1)
        self.value_channels = max(channels // 2, 1)
        self.theta = SNConv2d(channels, self.key_channels, 1, bias=False)
        self.phi = SNConv2d(channels, self.key_channels, 1, bias=False)
        self.g = SNConv2d(channels, self.value_channels, 1, bias=False)
        self.o = SNConv2d(self.value_channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # [B, HW, C/8]
        key = F.max_pool2d(self.phi(x), 2).flatten(2).transpose(1, 2)  # [B, HW/4, C/8]
        value = F.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)  # [B, HW/4, C/2]
        attended = F.scaled_dot_product_attention(query[:, None], key[:, None], value[:, None], scale=1.0)
        attended = attended[:, 0].transpose(1, 2).reshape(batch, self.value_channels, height, width)
        return x + self.gamma * self.o(attended.contiguous(memory_format=_memory_format(x)))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 \
        else torch.contiguous_format


def channels(cfg_min: int, cfg_max: int, level: int) -> int:
    """Channels after ``level + 1`` down blocks: min_channels doubling per block, capped at max_channels."""
    return min(cfg_min * 2**level, cfg_max)
