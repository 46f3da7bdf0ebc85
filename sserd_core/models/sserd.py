"""The whole SSERD network: encoder → emotion module → StyleGANEX decoder, one model class.

:class:`SSERDNet` holds the three parts under the official names (``encoder``,
``decoder``, ``emotion.cross_attention``, ``emotion.transformer``) plus ``latent_avg``, so a
converted official checkpoint is one ``save_pretrained`` folder (``config.json`` +
``diffusion_pytorch_model.safetensors``) that ``SSERDNet.from_pretrained`` loads.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .emotion_module import EmotionModule
from .encoder import PSPEncoder
from .stylegan2 import StyleGANEXGenerator, generator_channels

ALIGNMENTS = ("sserd-template", "ffhq")


class SSERDNet(ModelMixin, ConfigMixin):
    """Speech-preserving emotion editing network (SSERD, built on StyleGANEX).

    Config (defaults = the official SSERD model):

    - ``size``: StyleGAN resolution of the decoder (1024); ``n_styles = 2·log2(size) − 2``.
    - ``style_dim`` (512), ``n_mlp`` (8), ``channel_multiplier`` (2), ``channel_base``
      (16384), ``channel_max`` (512): decoder widths (:func:`generator_channels`).
    - ``encoder_widths``: IR-SE-50 stage widths ``(64, 128, 256, 512)``.
    - ``use_skip``, ``skip_max_layer`` (7), ``use_skip_torgb``, ``use_att`` (1),
      ``max_pooling``: StyleGANEX skip-fusion options, as in the official ``opts``.
    - ``nhead`` (4), ``dim_feedforward`` (1024), ``depth`` (2), ``heads`` (8),
      ``dim_head`` (64), ``mlp_dim`` (1): emotion module.
    - ``input_size``: side of the aligned face crop the encoder sees (256);
      ``alignment``: how that crop is cut from a frame (``"sserd-template"``: similarity
      onto SSERD's 68-point template, what the official checkpoints were trained with;
      ``"ffhq"``: the FFHQ eye/mouth quad). The decoder returns
      ``input_size · size / 256`` px (1024 for the official model).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channel_base: int = 16384, channel_max: int = 512,
                 encoder_widths: Sequence[int] = (64, 128, 256, 512), use_skip: bool = True, skip_max_layer: int = 7,
                 use_skip_torgb: bool = False, use_att: int = 1, max_pooling: bool = False,
                 nhead: int = 4, dim_feedforward: int = 1024, depth: int = 2, heads: int = 8, dim_head: int = 64,
                 mlp_dim: int = 1, input_size: int = 256, alignment: str = "sserd-template"):
        super().__init__()
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.n_styles = int(math.log2(size)) * 2 - 2
        ch = generator_channels(size, channel_multiplier, channel_base, channel_max)
        decoder_channels = [ch.get(2 ** (k + 2), ch[max(ch)]) for k in range(7)]
        self.encoder = PSPEncoder(n_styles=self.n_styles, style_dim=style_dim, widths=tuple(encoder_widths),
                                  decoder_channels=decoder_channels, use_skip=use_skip, skip_max_layer=skip_max_layer,
                                  use_skip_torgb=use_skip_torgb, use_att=use_att, max_pooling=max_pooling)
        self.decoder = StyleGANEXGenerator(size=size, style_dim=style_dim, n_mlp=n_mlp,
                                           channel_multiplier=channel_multiplier, channel_base=channel_base,
                                           channel_max=channel_max)
        self.emotion = EmotionModule(d_model=style_dim, nhead=nhead, dim_feedforward=dim_feedforward, depth=depth,
                                     heads=heads, dim_head=dim_head, mlp_dim=mlp_dim)
        #: mean W+ code of the generator ``[n_styles, style_dim]``, added to the encoder's codes
        self.register_buffer("latent_avg", torch.zeros(self.n_styles, style_dim))

    @property
    def output_size(self) -> int:
        """Side in px of the decoded face for an ``input_size`` crop."""
        return self.config.input_size * self.config.size // 256

    def encode(self, x: torch.Tensor):
        """``x`` ``[B, 3, S, S]`` aligned faces in −1…1 (``S = input_size``).

        Returns ``(raw_codes, codes, first_layer, skips)``: ``raw_codes`` ``[B, n_styles, d]``
        as the encoder outputs them (what the emotion module takes as a reference),
        ``codes = raw_codes + latent_avg`` (the W+ the decoder and the emotion query use),
        and the decoder features (see :meth:`PSPEncoder.forward`).
        """
        raw, first_layer, skips = self.encoder(x)
        return raw, raw + self.latent_avg.to(raw.dtype), first_layer, skips

    def encode_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Reference codes ``[B, n_styles, d]`` (raw encoder codes, no features) of aligned faces ``x``."""
        return self.encoder(x, return_features=False)

    def decode(self, codes, first_layer, skips, editing_w: Optional[torch.Tensor] = None, noise_mode: str = "zero",
               max_side: Optional[int] = None):
        """Image ``[B, 3, output_size, output_size]`` (−1…1) from W+ ``codes`` (+ ``editing_w``) and features.

        ``max_side``: stop at the first decoder level at least this wide (see
        :meth:`StyleGANEXGenerator.forward`); the image is then smaller than ``output_size``.
        """
        fusion = self.encoder.fusion if self.config.use_skip else None
        return self.decoder(codes, first_layer[0], skips if fusion is not None else None, fusion,
                            editing_w=editing_w, noise_mode=noise_mode, max_side=max_side)

    def forward(self, x: torch.Tensor, reference: Optional[torch.Tensor] = None,
                reference_codes: Optional[torch.Tensor] = None, noise_mode: str = "zero") -> torch.Tensor:
        """Edit aligned faces ``x`` ``[B, 3, S, S]`` to the emotion of ``reference`` (an aligned face
        batch) or of ``reference_codes`` ``[B or 1, n_styles, d]``; with neither, reconstruct ``x``.

        Returns ``[B, 3, output_size, output_size]`` in about −1…1.
        """
        _, codes, first_layer, skips = self.encode(x)
        if reference is not None:
            reference_codes = self.encode_reference(reference)
        edit = self.emotion(codes, reference_codes) if reference_codes is not None else None
        return self.decode(codes, first_layer, skips, edit, noise_mode)
