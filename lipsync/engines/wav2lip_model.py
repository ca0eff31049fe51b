"""The standard Wav2Lip generator (Prajwal et al. 2020), layer for layer, so that the original
checkpoints load.  Face input (B, 6, 96, 96): lower-half-masked face + reference face, RGB
order as the checkpoint expects (BGR for the original ones), values in [0, 1].  Audio input
(B, 1, 80, 16): a log-mel window.  Output (B, 3, 96, 96) in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def _c(cin, cout, k=3, s=1, p=1, r=False):
    return Conv2d(cin, cout, kernel_size=k, stride=s, padding=p, residual=r)


class Wav2Lip(nn.Module):
    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(_c(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(_c(16, 32, s=2), _c(32, 32, r=True), _c(32, 32, r=True)),  # 48
            nn.Sequential(_c(32, 64, s=2), _c(64, 64, r=True), _c(64, 64, r=True),
                          _c(64, 64, r=True)),  # 24
            nn.Sequential(_c(64, 128, s=2), _c(128, 128, r=True), _c(128, 128, r=True)),  # 12
            nn.Sequential(_c(128, 256, s=2), _c(256, 256, r=True), _c(256, 256, r=True)),  # 6
            nn.Sequential(_c(256, 512, s=2), _c(512, 512, r=True)),  # 3
            nn.Sequential(_c(512, 512, 3, 1, 0), _c(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = nn.Sequential(
            _c(1, 32), _c(32, 32, r=True), _c(32, 32, r=True),
            _c(32, 64, s=(3, 1)), _c(64, 64, r=True), _c(64, 64, r=True),
            _c(64, 128, s=3), _c(128, 128, r=True), _c(128, 128, r=True),
            _c(128, 256, s=(3, 2)), _c(256, 256, r=True),
            _c(256, 512, 3, 1, 0), _c(512, 512, 1, 1, 0),
        )
        T = Conv2dTranspose
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(_c(512, 512, 1, 1, 0)),
            nn.Sequential(T(1024, 512, 3, 1, 0), _c(512, 512, r=True)),  # 3
            nn.Sequential(T(1024, 512, 3, 2, 1, 1), _c(512, 512, r=True),
                          _c(512, 512, r=True)),  # 6
            nn.Sequential(T(768, 384, 3, 2, 1, 1), _c(384, 384, r=True),
                          _c(384, 384, r=True)),  # 12
            nn.Sequential(T(512, 256, 3, 2, 1, 1), _c(256, 256, r=True),
                          _c(256, 256, r=True)),  # 24
            nn.Sequential(T(320, 128, 3, 2, 1, 1), _c(128, 128, r=True),
                          _c(128, 128, r=True)),  # 48
            nn.Sequential(T(160, 64, 3, 2, 1, 1), _c(64, 64, r=True), _c(64, 64, r=True)),  # 96
        ])
        self.output_block = nn.Sequential(_c(80, 32), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio, face):
        """audio (B, 1, 80, 16), face (B, 6, 96, 96) -> (B, 3, 96, 96)."""
        x = self.audio_encoder(audio)
        feats = []
        y = face
        for block in self.face_encoder_blocks:
            y = block(y)
            feats.append(y)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        return self.output_block(x)


def load_wav2lip(path, *, device="cpu") -> Wav2Lip:
    """Load a Wav2Lip checkpoint: a state_dict, possibly under "state_dict", possibly with
    DataParallel's "module." prefixes (as the original checkpoints have)."""
    # weights_only: a checkpoint is data, never code (the original ones hold tensors, ints, dicts).
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    model = Wav2Lip()
    model.load_state_dict(state)
    return model.to(device).eval()
