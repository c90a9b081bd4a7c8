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

import torch

from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.class_names import phrase_of
from avzsl.extractors.text.text_towers import EMBEDDER, TextTowerEmbedder
from avzsl.model.registry import FeatureDims, build_method
from avzsl.pipeline.predict.explain import Scoring, rank_videos
from avzsl.pipeline.predict.ranking import (
    Candidates,
    VideoFailure,
    VideoPrediction,
    encode_videos,
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


class ZeroShotPredictor:
    """The frozen CLIP/CLAP zero-shot scorer (no run) with its towers built once.

    Args:
        clip_checkpoint / clap_checkpoint: the towers' files (docs/encoders.md); or ``random_weights`` (tests).
        random_weights: random tower weights (predictions are meaningless; tests only).
        encoder: ``clip_clap`` (middle window visual feature) or ``clip_clap_per_second`` (mean over windows).
        templates: ``plain``, ``ucf``, ``activitynet`` or ``vggsound`` prompt templates.
        audio_weight: weight of the audio-CLAP cosine in the fused score.
        device: where the towers run.
        seed: seed of random weights.

    Raises:
        PredictError: an encoder that is not a CLIP/CLAP set or unknown templates (before any model loads).
    """

    def __init__(
        self,
        clip_checkpoint: Path | None = None,
        clap_checkpoint: Path | None = None,
        random_weights: bool = False,
        encoder: str = "clip_clap",
        templates: str = "plain",
        audio_weight: float = 0.5,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if encoder not in ZERO_SHOT_ENCODERS:
            raise PredictError(f"--zero-shot scores with CLIP/CLAP encoders ({', '.join(ZERO_SHOT_ENCODERS)}) or with "
                               f"ConSE on effnet_lite0_aisfx, not {encoder!r}")
        self.templates = ("plain", "plain") if templates == "plain" else (f"{templates}_visual", f"{templates}_audio")
        try:
            TextTowerEmbedder(None, *self.templates)  # unknown template names fail before any model loads
        except KeyError as exc:
            raise PredictError(f"--text-templates {templates!r}: {exc.args[0]}") from exc
        self.device = torch.device(device)
        self.audio_weight = audio_weight
        self.random_weights = random_weights
        self.encoders = build_encoder(encoder, tower_weights(clip_checkpoint, clap_checkpoint), random_weights,
                                      device=self.device, seed=seed)

    def candidates(self, class_names: Sequence[str], phrases: Mapping[str, str] | None = None) -> Candidates:
        """The class names through the text towers (no class is "seen": there is no training); ``phrases`` (class
        name -> phrase, case-insensitive) for some of them, the others embed ``phrase_of(name)``."""
        names = list(class_names)
        if not names:
            raise PredictError("no candidate class names given")
        given = {k.lower(): v for k, v in (phrases or {}).items()}
        chosen = {n: given.get(n.lower(), phrase_of(n)) for n in names} if given else None
        embedded = TextTowerEmbedder(self.encoders, *self.templates).embed(names, chosen)
        return Candidates(embedded.names, embedded.phrases, embedded.embeddings, [False] * len(names))

    def scoring(self, candidates: Candidates) -> Scoring:
        """The frozen scorer for these candidates (fused cosine: no probability, no calibration)."""
        clip_dim = self.encoders.clip.embed_dim
        dims = FeatureDims(audio_dim=self.encoders.clap.embed_dim, visual_dim=clip_dim,
                           text_dim=int(candidates.embeddings.shape[1]))
        method = build_method("zero_shot", dims, {"audio_weight": self.audio_weight, "clap_text_offset": clip_dim})
        w = self.audio_weight
        score_is = f"{1 - w:.3g} cos(visual, CLIP text) + {w:.3g} cos(audio, CLAP text) (zero_shot, no probability)"
        return Scoring(method.to(self.device), candidates, None, False, self.device, probabilities=False,
                       score_is=score_is)

    def predict(
        self, paths: Sequence[str | Path], class_names: Sequence[str] | Candidates, top: int = 5, workers: int = 1,
        batch_size: int = 16,
    ) -> dict[str, VideoPrediction | VideoFailure]:
        """Rank the class names for each video: path -> :class:`VideoPrediction` (``score`` = the fused cosine,
        ``p`` None: no probability; branch scores: the CLIP and CLAP cosines), or :class:`VideoFailure`."""
        candidates = class_names if isinstance(class_names, Candidates) else self.candidates(class_names)
        encoded = encode_videos([str(p) for p in paths], self.encoders, "pyav", "clean", workers=workers,
                                batch_size=batch_size)
        return with_failures(encoded, rank_videos(self.scoring(candidates), usable_videos(encoded), top))


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

    The arguments are those of :class:`ZeroShotPredictor` and of its :meth:`~ZeroShotPredictor.predict`; class
    names are checked before the towers load.

    Returns:
        path -> :class:`VideoPrediction` (``score`` = the fused cosine, ``p`` None: no probability; no class is
        "seen"), or :class:`VideoFailure`.
    """
    names = list(class_names)
    if not names:
        raise PredictError("no candidate class names given")
    predictor = ZeroShotPredictor(clip_checkpoint, clap_checkpoint, random_weights, encoder, templates, audio_weight,
                                  device, seed)
    return predictor.predict(paths, names, top, workers, batch_size)
