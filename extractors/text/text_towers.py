"""Class-name embeddings from the CLIP and CLAP text towers (the ClipClap-GZSL recipe), next to word vectors.

For each class the phrase (``phrase_of(name)`` or an explicit map, as for the word vectors) is formatted into every
template of a set (``extractors/text/prompt_templates.py``), each prompt is embedded and L2-normalised, the mean over
templates is L2-normalised again (``zeroshot_classifier`` in ClipClap's ``clip_embeddings_extraction``). The class
embedding is the concatenation ``[CLIP text (D_V) | CLAP text (D_A)]``, as ClipClap feeds its model. Which slice is
which, the templates and the towers' weights are recorded in the class table's provenance (``segments``), so the
frozen zero-shot method (``model/zero_shot.py``) and predict find them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avzsl.extractors.text.class_names import EmbeddedClasses, phrase_of
from avzsl.extractors.text.prompt_templates import template_set

_logger = logging.getLogger(__name__)

# Recorded in every cache's class table and cache.json identity: a stable name, not this module's path (it moved from
# avzsl.extractors.text_towers; caches written before must keep matching).
EMBEDDER = "avzsl.extractors.text_towers.TextTowerEmbedder"
DEFAULT_TEMPLATES = "plain"


def _template_mean(encode: Any, phrases: Sequence[str], templates: Sequence[str]) -> np.ndarray:
    """``(C, D)``: per phrase, the re-normalised mean of its normalised prompt embeddings."""
    rows = []
    for phrase in phrases:
        emb = encode([t.format(phrase) for t in templates]).numpy().astype(np.float64)  # (K, D), unit rows
        mean = emb.mean(axis=0)
        rows.append(mean / max(np.linalg.norm(mean), 1e-12))
    return np.stack(rows).astype(np.float32)


class TextTowerEmbedder:
    """Embeds class names with the text towers of loaded CLIP/CLAP encoders.

    Args:
        encoders: :class:`avzsl.extractors.encoders.clip_clap.ClipClapEncoders` (``clip.encode_text``,
            ``clap.encode_text``).
        visual_templates: template set for the CLIP text tower (``ucf_visual``, ``activitynet_visual``,
            ``vggsound_visual``, ``plain``).
        audio_templates: template set for the CLAP text tower (``ucf_audio``, ..., ``plain``).
    """

    def __init__(self, encoders: Any, visual_templates: str = DEFAULT_TEMPLATES,
                 audio_templates: str = DEFAULT_TEMPLATES) -> None:
        self.encoders = encoders
        self.visual_templates = visual_templates
        self.audio_templates = audio_templates
        template_set(visual_templates)  # unknown names fail before any model work
        template_set(audio_templates)

    def provenance(self, clip_dim: int, clap_dim: int) -> dict[str, Any]:
        """How the rows were made: towers, template sets, and the column slices of each tower."""
        return {
            "embedder": EMBEDDER,
            "kind": "text_towers",
            "segments": {"clip_text": [0, clip_dim], "clap_text": [clip_dim, clip_dim + clap_dim]},
            "templates": {
                "clip_text": {"set": self.visual_templates, "templates": list(template_set(self.visual_templates))},
                "clap_text": {"set": self.audio_templates, "templates": list(template_set(self.audio_templates))},
            },
            "towers": {
                "clip_text": {"weights_sha256": self.encoders.clip.weights_sha256},
                "clap_text": {"weights_sha256": self.encoders.clap.weights_sha256},
            },
            "composition": "per tower: mean over templates of L2-normalised prompt embeddings, re-normalised; "
            "towers concatenated [clip_text | clap_text]",
            "normalisation": "l2 per tower",
        }

    def embed(self, class_names: Sequence[str], phrases: Mapping[str, str] | None = None) -> EmbeddedClasses:
        """Embed class names.

        Args:
            class_names: dataset class names.
            phrases: optional class -> phrase map (default: ``phrase_of`` of the name, e.g. "ApplyEyeMakeup" ->
                "apply eye makeup").

        Returns:
            ``(C, D_clip + D_clap)`` float32 embeddings (each half unit-norm), phrases and provenance.
        """
        names = list(class_names)
        if phrases is None:
            chosen = [phrase_of(n) for n in names]
        else:
            folded = {k.lower(): v for k, v in phrases.items()}
            missing = [n for n in names if n not in phrases and n.lower() not in folded]
            if missing:
                raise KeyError(f"the phrase map has no entry for {len(missing)} class(es): {missing}")
            chosen = [str(phrases.get(n, folded.get(n.lower()))) for n in names]
        clip = _template_mean(self.encoders.clip.encode_text, chosen, template_set(self.visual_templates))
        clap = _template_mean(self.encoders.clap.encode_text, chosen, template_set(self.audio_templates))
        provenance = self.provenance(clip.shape[1], clap.shape[1])
        provenance["phrase_source"] = "map" if phrases is not None else "split_class_name"
        _logger.info("embedded %d class names with the CLIP and CLAP text towers", len(names))
        return EmbeddedClasses(names=names, phrases=chosen, embeddings=np.concatenate([clip, clap], axis=1),
                               provenance=provenance)


def text_segments(provenance: Mapping[str, Any]) -> dict[str, tuple[int, int]] | None:
    """The ``{"clip_text": (start, stop), "clap_text": (start, stop)}`` column slices of a class table made by
    :class:`TextTowerEmbedder`, or None for other embedders."""
    segments = provenance.get("segments") if provenance.get("embedder") == EMBEDDER else None
    if not segments:
        return None
    return {k: (int(v[0]), int(v[1])) for k, v in segments.items()}
