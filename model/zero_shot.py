"""The frozen zero-shot baseline: foundation-model embeddings scored directly against class-name text, no training.

Score of video ``i`` for class ``c`` (all vectors L2-normalised first)::

    s[i, c] = (1 - w) * cos(v_i, t^CLIP_c) + w * cos(a_i, t^CLAP_c)

with ``v`` the CLIP image embedding, ``a`` the CLAP audio embedding, ``t^CLIP``/``t^CLAP`` the two text-tower slices
of the class embedding and ``w = audio_weight``. It needs a cache extracted with CLIP/CLAP encoders and text-tower
class embeddings (``avzsl-extract --encoder clip_clap``): the class table is ``[CLIP text (D_V) | CLAP text (D_A)]``
(its provenance ``segments`` records the slices; the defaults here follow that layout, the offsets can be set).
Calibrated stacking and the metrics are the protocol's, as for every method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class ZeroShotOptions:
    """Fusion of the two cosine similarities.

    Attributes:
        audio_weight: weight ``w`` of the audio-CLAP cosine (``1 - w`` for the visual-CLIP cosine), in [0, 1].
        clip_text_offset: first column of the CLIP text slice (width ``D_V``) in the class embedding.
        clap_text_offset: first column of the CLAP text slice (width ``D_A``); -1 = right after the CLIP slice.
    """

    audio_weight: float = 0.5
    clip_text_offset: int = 0
    clap_text_offset: int = -1


@register_method(
    "zero_shot",
    description="frozen CLIP/CLAP zero-shot scorer: fused cosine of visual/CLIP-text and audio/CLAP-text, no training",
    trainable=False,
)
class ZeroShot(Method):
    """No parameters: ``scores`` is the fused cosine similarity (higher is better), ``(B, C)``."""

    Options = ZeroShotOptions

    def __init__(self, dims: FeatureDims, options: ZeroShotOptions) -> None:
        super().__init__(dims, options)
        if not 0.0 <= options.audio_weight <= 1.0:
            raise ValueError(f"audio_weight must be in [0, 1], got {options.audio_weight}")
        clap = options.clap_text_offset if options.clap_text_offset >= 0 else options.clip_text_offset + dims.visual_dim
        self.clip_slice = slice(options.clip_text_offset, options.clip_text_offset + dims.visual_dim)
        self.clap_slice = slice(clap, clap + dims.audio_dim)
        if max(self.clip_slice.stop, self.clap_slice.stop) > dims.text_dim:
            raise ValueError(
                f"zero_shot needs text-tower class embeddings [CLIP text ({dims.visual_dim}) | CLAP text "
                f"({dims.audio_dim})]; the class embeddings have {dims.text_dim} columns (extract with --encoder "
                "clip_clap and the text towers)"
            )

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        """The baseline is frozen: there is nothing to train (registered with ``trainable=False``)."""
        raise RuntimeError("zero_shot is a frozen baseline (trainable=False); the protocol does not train it")

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """Fused cosine similarities.

        Args:
            batch: ``audio (B, D_A)`` CLAP and ``visual (B, D_V)`` CLIP embeddings.
            class_emb: ``(C, D_W)`` text-tower class embeddings.

        Returns:
            ``(B, C)`` float32, in [-1, 1].
        """
        w = self.options.audio_weight
        clip_text = F.normalize(class_emb[:, self.clip_slice].float(), dim=-1)
        clap_text = F.normalize(class_emb[:, self.clap_slice].float(), dim=-1)
        visual = F.normalize(batch.visual.float(), dim=-1) @ clip_text.T
        audio = F.normalize(batch.audio.float(), dim=-1) @ clap_text.T
        return (1.0 - w) * visual + w * audio
