"""Evaluation metrics and baselines (paper §4): SSIM, PSNR, L1 (``image``), CSIM (``identity``), FID and the
Fréchet distance (``fid``), AKD and temporal jitter (``landmark_distance``), copy-source and mesh-warp baselines
(``baselines``), and report writing (``report``). Import the submodule you need; nothing heavy is imported here.
"""
