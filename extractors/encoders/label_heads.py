"""Named classifier heads of encoder sets: what a label-space zero-shot method (ConSE) needs, all offline.

An encoder set has a head when one of its networks ends in a classifier whose labels have published names:

- ``effnet_lite0_aisfx`` visual: the EfficientNet-Lite0 ImageNet-1k head (``_fc``: ``(1000, 1280)`` weight and
  ``(1000,)`` bias, part of the packaged weight file). Its input is the global average of the last convolution,
  exactly the 1280-d feature the encoder returns and a cache stores, so ``logits = feature @ W.T + b``. The 1000
  names are torchvision's bundled ImageNet category names (``torchvision.models._meta._IMAGENET_CATEGORIES``, the
  metadata behind ``ResNet18_Weights.IMAGENET1K_V1.meta["categories"]``; no weights are downloaded), in the
  standard class-index order the checkpoint was trained with.
- ``effnet_lite0_aisfx`` audio: none. The aiSFX checkpoint keeps nine classifier heads (78, 79, 69, 81, 10, 27, 3,
  23 and 8 classes of the sound-effects libraries it was trained on), but the package ships no class names for
  them, so their outputs cannot be tied to words.
- SeLaVi and CLIP/CLAP sets: none (self-supervised; CLIP/CLAP have their own text towers, ``zero_shot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LABELLED_ENCODERS = ("effnet_lite0_aisfx",)
"""Encoder sets with at least one named classifier head."""


@dataclass
class LabelHead:
    """A classifier head over named labels.

    Attributes:
        modality: ``visual`` or ``audio``: which stored feature it reads.
        names: L label names.
        weight: ``(L, D)`` float32; bias: ``(L,)`` float32 (logits = ``feature @ weight.T + bias``).
        source: where the head and the names come from (one line).
    """

    modality: str
    names: list[str]
    weight: np.ndarray
    bias: np.ndarray
    source: str


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order (torchvision's bundled metadata; nothing downloaded)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES  # lazy: importing torchvision takes seconds

    return list(_IMAGENET_CATEGORIES)


def label_heads(encoders: Any) -> dict[str, LabelHead]:
    """The named heads of built encoders, by modality (empty when the set has none).

    Taken from the encoders' own networks, so a head always matches the weights that computed the features
    (packaged or seeded random).
    """
    from avzsl.extractors.encoders.packaged import PackagedEncoders  # lazy: the module imports the registry

    if not isinstance(encoders, PackagedEncoders):
        return {}
    fc = encoders.visual._fc
    weight = fc.weight.detach().float().cpu().numpy()
    bias = fc.bias.detach().float().cpu().numpy()
    names = imagenet_categories()
    if weight.shape[0] != len(names):
        raise ValueError(f"the EfficientNet-Lite0 head has {weight.shape[0]} outputs, ImageNet-1k has {len(names)}")
    return {"visual": LabelHead("visual", names, weight, bias,
                                "EfficientNet-Lite0 ImageNet-1k head (_fc); names: torchvision ImageNet categories")}


def embed_labels(embedder: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Word vectors of label names, never refusing one.

    Args:
        embedder: a :class:`avzsl.extractors.text.class_names.ClassNameEmbedder` (the class names' vectors).
        names: L label names (repeats allowed: ImageNet has two "crane" and two "maillot").

    Returns:
        ``(L, D_W)`` float32 unit rows (zero rows for unusable labels) and ``(L,)`` bool, False where no word of
        the name is in the vectors (the words that are missing are dropped, as ``oov="skip"`` does).
    """
    rows = np.zeros((len(names), embedder.dim), np.float32)
    ok = np.zeros(len(names), bool)
    for i, name in enumerate(names):
        vector = embedder.phrase_vector(name)
        if vector is not None:
            rows[i], ok[i] = vector, True
    return rows, ok


def attach_label_bridge(method: Any, encoders: Any, embedder: Any) -> dict[str, int]:
    """Give a label-space method (``method.modalities()``, ``method.set_bridge``: ConSE) the encoders' named heads
    and the label names' word vectors.

    Args:
        method: e.g. :class:`avzsl.model.conse.ConSE`.
        encoders: the encoders that computed (or compute) the features it scores.
        embedder: the word vectors of the class names (a ``ClassNameEmbedder``).

    Returns:
        modality -> number of labels with a word vector.

    Raises:
        ValueError: the encoders have no named head for a modality the method uses, or the sizes differ.
    """
    heads = label_heads(encoders)
    usable = {}
    for modality in method.modalities():
        head = heads.get(modality)
        if head is None:
            name = getattr(getattr(encoders, "spec", None), "name", type(encoders).__name__)
            raise ValueError(f"the encoder set {name!r} has no {modality} classifier head with label names "
                             f"(sets with one: {', '.join(LABELLED_ENCODERS)})")
        label_emb, ok = embed_labels(embedder, head.names)
        method.set_bridge(modality, head.weight, head.bias, label_emb, ok)
        usable[modality] = int(ok.sum())
    return usable
