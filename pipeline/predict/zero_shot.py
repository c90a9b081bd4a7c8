"""Open-vocabulary prediction with the CLIP/CLAP text towers.

Two uses:

- ``avzsl-predict --zero-shot --classes ... VIDEO`` (no run): the video is decoded and encoded as ``avzsl-extract
  --encoder clip_clap`` would, the class names go through the text towers, and the frozen zero-shot method
  (``model/zero_shot.py``) ranks them. :func:`predict_zero_shot`.
- ``avzsl-predict --run RUN`` where RUN was trained on a CLIP/CLAP cache whose class table came from the text towers:
  new class names are embedded with the same towers and templates (:class:`TowerRunSupport`, used by
  :class:`avzsl.pipeline.predict.predictor.Predictor`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.text_towers import EMBEDDER, TextTowerEmbedder
from avzsl.model.registry import FeatureBatch, FeatureDims, build_method
from avzsl.pipeline.predict.ranking import (
    Candidates,
    VideoFailure,
    VideoPrediction,
    encode_videos,
    rank_candidates,
    usable_videos,
    with_failures,
)
from avzsl.pipeline.predict.records import EncoderRequest, PredictError, encoder_request

_logger = logging.getLogger(__name__)

ZERO_SHOT_ENCODERS = ("clip_clap", "clip_clap_per_second")


def is_tower_run(info: Mapping[str, Any]) -> bool:
    """Whether a run's cache embedded its class names with the text towers."""
    return (info.get("class_embedder") or {}).get("embedder") == EMBEDDER


def _template_names(provenance: Mapping[str, Any]) -> tuple[str, str]:
    templates = provenance.get("templates") or {}
    return (
        str((templates.get("clip_text") or {}).get("set", "plain")),
        str((templates.get("clap_text") or {}).get("set", "plain")),
    )


def _check_tower_shas(encoders: Any, provenance: Mapping[str, Any]) -> None:
    towers = provenance.get("towers") or {}
    for key, tower in (("clip_text", encoders.clip), ("clap_text", encoders.clap)):
        recorded = (towers.get(key) or {}).get("weights_sha256")
        if recorded and recorded != tower.weights_sha256:
            raise PredictError(
                f"the {key} tower has sha256 {tower.weights_sha256}, the run's class names were embedded with "
                f"{recorded}: pass the run's --clip-checkpoint/--clap-checkpoint"
            )


class _LazyTowerEmbedder:
    """Class-name embedder of a tower run: builds :class:`TextTowerEmbedder` on the predictor's encoders."""

    def __init__(self, support: TowerRunSupport, provenance: Mapping[str, Any]) -> None:
        self.support = support
        self.provenance = dict(provenance)
        segments = self.provenance.get("segments") or {}
        self.dim = max((int(v[1]) for v in segments.values()), default=None)

    def embed(self, names: Sequence[str], phrases: Mapping[str, str] | None = None) -> Any:
        encoders = self.support.encoders()
        _check_tower_shas(encoders, self.provenance)
        visual, audio = _template_names(self.provenance)
        return TextTowerEmbedder(encoders, visual, audio).embed(names, phrases)


def tower_weights(clip_checkpoint: Path | None, clap_checkpoint: Path | None) -> dict[str, Path]:
    """The ``weights`` of ``build_encoder`` for a CLIP/CLAP set: the given files under ``"clip"`` / ``"clap"``."""
    return {key: path for key, path in (("clip", clip_checkpoint), ("clap", clap_checkpoint)) if path is not None}


@dataclass
class TowerRunSupport:
    """What :class:`~avzsl.pipeline.predict.predictor.Predictor` needs for a run on a CLIP/CLAP text-tower cache."""

    request: EncoderRequest
    clip_checkpoint: Path | None
    clap_checkpoint: Path | None
    device: torch.device
    _encoders: Any = None

    def encoders(self) -> Any:
        """The run's towers (built once; the combined sha256 must be the recorded one)."""
        if self._encoders is None:
            encoders = build_encoder(
                self.request.name,
                tower_weights(self.clip_checkpoint, self.clap_checkpoint),
                self.request.random_weights,
                device=self.device,
                seed=self.request.random_seed or 0,
            )
            if encoders.weights_sha256 != self.request.weights_sha256:
                raise PredictError(
                    f"the CLIP/CLAP weights ({encoders.weights_sha256}) are not those the run's features were "
                    f"extracted with ({self.request.weights_sha256})"
                )
            self._encoders = encoders
        return self._encoders


def tower_run_setup(
    info: Mapping[str, Any], clip_checkpoint: Path | None, clap_checkpoint: Path | None, random_weights: bool,
    device: torch.device,
) -> tuple[EncoderRequest, TowerRunSupport, _LazyTowerEmbedder]:
    """Request, encoder loader and class-name embedder of a tower run (cheap: nothing loads yet).

    Raises:
        PredictError: weight options that cannot reproduce the run's towers.
    """
    given = clip_checkpoint if clip_checkpoint is not None else clap_checkpoint
    request = encoder_request(dict(info), given, random_weights)
    if not request.random_weights and (clip_checkpoint is None or clap_checkpoint is None):
        raise PredictError("the run's features come from CLIP/CLAP checkpoints: pass --clip-checkpoint and "
                           "--clap-checkpoint with the run's files")
    support = TowerRunSupport(request, clip_checkpoint, clap_checkpoint, device)
    return request, support, _LazyTowerEmbedder(support, info.get("class_embedder") or {})


def predict_zero_shot(
    paths: Sequence[str | Path],
    class_names: Sequence[str],
    clip_checkpoint: Path | None = None,
    clap_checkpoint: Path | None = None,
    random_weights: bool = False,
    encoder: str = "clip_clap",
    templates: str = "plain",
    audio_weight: float = 0.5,
    top: int = 5,
    workers: int = 1,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, VideoPrediction | VideoFailure]:
    """Rank arbitrary class names for raw videos with the frozen CLIP/CLAP zero-shot scorer (no run).

    Args:
        paths: video files.
        class_names: candidate class names (any text).
        clip_checkpoint / clap_checkpoint: the towers' files (docs/encoders.md); or ``random_weights`` (tests).
        encoder: ``clip_clap`` (middle window visual feature) or ``clip_clap_per_second`` (mean over windows).
        templates: ``plain``, ``ucf``, ``activitynet`` or ``vggsound`` prompt templates.
        audio_weight: weight of the audio-CLAP cosine in the fused score.
        top: predictions kept per video.
        workers / batch_size: decoding processes and windows per forward.
        device: where the towers run.
        seed: seed of random weights.

    Returns:
        path -> :class:`VideoPrediction` (``score`` = the fused cosine, ``p`` None: no probability; no class is
        "seen"), or :class:`VideoFailure`.
    """
    if encoder not in ZERO_SHOT_ENCODERS:
        raise PredictError(f"--zero-shot scores with CLIP/CLAP encoders ({', '.join(ZERO_SHOT_ENCODERS)}) or with "
                           f"ConSE on effnet_lite0_aisfx, not {encoder!r}")
    names = list(class_names)
    if not names:
        raise PredictError("no candidate class names given")
    visual_t, audio_t = ("plain", "plain") if templates == "plain" else (f"{templates}_visual", f"{templates}_audio")
    try:
        TextTowerEmbedder(None, visual_t, audio_t)  # unknown template names fail before any model loads
    except KeyError as exc:
        raise PredictError(f"--text-templates {templates!r}: {exc.args[0]}") from exc
    encoders = build_encoder(encoder, tower_weights(clip_checkpoint, clap_checkpoint), random_weights, device=device,
                             seed=seed)
    embedded = TextTowerEmbedder(encoders, visual_t, audio_t).embed(names)
    candidates = Candidates(embedded.names, embedded.phrases, embedded.embeddings, [False] * len(names))
    encoded = encode_videos([str(p) for p in paths], encoders, "pyav", "clean", workers=workers,
                            batch_size=batch_size)
    good = usable_videos(encoded)
    results: dict[str, VideoPrediction] = {}
    if good:
        clip_dim = encoders.clip.embed_dim
        dims = FeatureDims(audio_dim=encoders.clap.embed_dim, visual_dim=clip_dim,
                           text_dim=int(embedded.embeddings.shape[1]))
        method = build_method("zero_shot", dims, {"audio_weight": audio_weight, "clap_text_offset": clip_dim})
        batch = FeatureBatch(torch.from_numpy(np.stack([v.audio_mean for v in good.values()])),
                             torch.from_numpy(np.stack([v.visual_mean for v in good.values()])))
        scores = method.scores(batch, torch.from_numpy(embedded.embeddings)).numpy()
        score_is = (f"{1 - audio_weight:.3g} cos(visual, CLIP text) + {audio_weight:.3g} cos(audio, CLAP text) "
                    "(zero_shot, no probability)")
        for row, (path, video) in enumerate(good.items()):
            results[path] = VideoPrediction(rank_candidates(None, scores[row], candidates, top), video.windows,
                                            score_is)
    return with_failures(encoded, results)
