"""ConSE (Norouzi et al., ICLR 2014): zero-shot scores through a pretrained classifier's label space, no training.

A pretrained encoder with a classifier head over L named labels (the packaged EfficientNet-Lite0's 1000 ImageNet
classes) maps a video to label probabilities; the video's semantic embedding is the convex combination of the word
vectors of its T most probable labels, and a candidate class scores the cosine of that embedding with the class
name's vector (the same word vectors)::

    q      = softmax(W f + b)                         (L,) label probabilities of the feature f
    top    = the T labels of largest q (labels whose name has no word vector are never chosen)
    e      = sum_{t in top} q_t s(label_t) / sum_{t in top} q_t
    s[c]   = (1 - w) cos(e_visual, w_c) + w cos(e_audio, w_c)

``W, b`` is the classifier head applied to the stored pooled feature (for EfficientNet-Lite0 the cache's 1280-d
visual feature is exactly the head's input: the global average of the last convolution, so the cache needs no
change); ``s(label)`` and ``w_c`` are unit-norm class-name vectors. The feature of a video is the mean of its window
features, so ``W f + b`` is the mean of the windows' logits. With ``audio_labels = 0`` (an audio encoder whose
classifier labels are not published, as aiSFX's) only the visual term exists and ``audio_weight`` must be 0.

The head and the label vectors (the "bridge") are not learned: they are set with :meth:`ConSE.set_bridge` by whoever
builds the method from the encoder and the word vectors (the pipeline, from the cache's record), and are saved with
the method's ``state_dict`` as buffers, so a saved run scores new class names without the encoder's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method

MODALITIES = ("visual", "audio")


@dataclass(frozen=True)
class ConSEOptions:
    """Attributes:
    top_t: T, the number of most probable labels combined (the paper's best: 10).
    visual_labels: L_V, labels of the visual encoder's classifier head (1000 for ImageNet-1k).
    audio_labels: L_A, labels of the audio encoder's head; 0 when it has none with names.
    audio_weight: w, weight of the audio cosine in [0, 1]; must be 0 without audio labels.
    """

    top_t: int = 10
    visual_labels: int = 1000
    audio_labels: int = 0
    audio_weight: float = 0.0


@register_method(
    "conse",
    description="ConSE (Norouzi et al., ICLR 2014): word vectors of the encoder's top-T ImageNet labels, weighted by "
    "their probabilities, cosine with the class names; no training (needs an encoder with a labelled head)",
    trainable=False,
)
class ConSE(Method):
    """No parameters; buffers ``<modality>_head_weight (L, D)``, ``_head_bias (L,)``, ``_label_emb (L, D_W)``,
    ``_label_ok (L,)`` per modality with labels, set by :meth:`set_bridge`."""

    Options = ConSEOptions
    needs_label_bridge: ClassVar[bool] = True
    """The pipeline must call :meth:`set_bridge` after building it (the protocol and prediction do)."""

    def __init__(self, dims: FeatureDims, options: ConSEOptions) -> None:
        super().__init__(dims, options)
        if options.top_t < 1:
            raise ValueError(f"top_t must be >= 1, got {options.top_t}")
        if not 0.0 <= options.audio_weight <= 1.0:
            raise ValueError(f"audio_weight must be in [0, 1], got {options.audio_weight}")
        if options.audio_weight > 0 and options.audio_labels == 0:
            raise ValueError("audio_weight > 0 needs an audio classifier with labels (audio_labels > 0)")
        if options.visual_labels == 0 and options.audio_weight < 1.0:
            raise ValueError("visual_labels = 0 leaves only the audio term: set audio_weight to 1")
        for modality, labels, feature_dim in (("visual", options.visual_labels, dims.visual_dim),
                                              ("audio", options.audio_labels, dims.audio_dim)):
            if labels:
                self.register_buffer(f"{modality}_head_weight", torch.zeros(labels, feature_dim))
                self.register_buffer(f"{modality}_head_bias", torch.zeros(labels))
                self.register_buffer(f"{modality}_label_emb", torch.zeros(labels, dims.text_dim))
                self.register_buffer(f"{modality}_label_ok", torch.zeros(labels, dtype=torch.bool))
        self.register_buffer("bridge_set", torch.zeros((), dtype=torch.bool))

    def modalities(self) -> list[str]:
        """The modalities with a classifier head (``visual`` and/or ``audio``)."""
        labels = {"visual": self.options.visual_labels, "audio": self.options.audio_labels}
        return [m for m in MODALITIES if labels[m]]

    def set_bridge(self, modality: str, weight: np.ndarray | torch.Tensor, bias: np.ndarray | torch.Tensor,
                   label_emb: np.ndarray | torch.Tensor, label_ok: np.ndarray | torch.Tensor) -> None:
        """Set one modality's classifier head and label vectors.

        Args:
            modality: ``visual`` or ``audio`` (one of :meth:`modalities`).
            weight / bias: the head, ``(L, D)`` and ``(L,)`` (logits = ``features @ weight.T + bias``).
            label_emb: ``(L, D_W)`` unit-norm word vectors of the label names (rows of unusable labels: any).
            label_ok: ``(L,)`` bool, False for a label whose name has no word vector (never chosen).

        Raises:
            ValueError: a modality without labels, or shapes that differ from the options and dims.
        """
        if modality not in self.modalities():
            raise ValueError(f"conse was built without {modality} labels (options: {self.options})")
        tensors = {"head_weight": weight, "head_bias": bias, "label_emb": label_emb, "label_ok": label_ok}
        for key, value in tensors.items():
            target = getattr(self, f"{modality}_{key}")
            value = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"conse {modality} {key}: expected shape {tuple(target.shape)}, got "
                                 f"{tuple(value.shape)}")
            target.copy_(value.to(target.dtype))
        if not bool(getattr(self, f"{modality}_label_ok").any()):
            raise ValueError(f"conse {modality}: no label has a word vector")
        done = all(bool(getattr(self, f"{m}_label_ok").any()) for m in self.modalities())
        self.bridge_set.fill_(done)

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        """Nothing to train (registered with ``trainable=False``)."""
        raise RuntimeError("conse is a frozen baseline (trainable=False); the protocol does not train it")

    def label_probabilities(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` softmax of the head's logits for ``(B, D)`` features."""
        weight = getattr(self, f"{modality}_head_weight")
        bias = getattr(self, f"{modality}_head_bias")
        return torch.softmax(features.float() @ weight.T + bias, dim=-1)

    def semantic_embedding(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        """``(B, D_W)`` unit-norm convex combination of the top-T label vectors."""
        q = self.label_probabilities(modality, features)
        ok = getattr(self, f"{modality}_label_ok")
        q = torch.where(ok, q, torch.zeros_like(q))
        top = min(self.options.top_t, int(ok.sum()))
        weights, index = q.topk(top, dim=-1)  # (B, T)
        vectors = getattr(self, f"{modality}_label_emb")[index]  # (B, T, D_W)
        mixed = (weights.unsqueeze(-1) * vectors).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return F.normalize(mixed, dim=-1)

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """Fused cosines ``(B, C)`` in [-1, 1] of the videos' semantic embeddings with the class vectors."""
        if not bool(self.bridge_set):
            raise RuntimeError("conse has no label bridge: set_bridge() was not called for every modality")
        classes = F.normalize(class_emb.float(), dim=-1)
        w = self.options.audio_weight
        total = torch.zeros(len(batch), class_emb.shape[0], device=class_emb.device)
        for modality, weight in (("visual", 1.0 - w), ("audio", w)):
            if weight > 0:
                features = batch.visual if modality == "visual" else batch.audio
                total = total + weight * (self.semantic_embedding(modality, features) @ classes.T)
        return total
