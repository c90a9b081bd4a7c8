"""``RUN/model.pt``: the trained stage-2 method of a run and everything evaluation and prediction need with it.

The file is a checkpoint (:mod:`avzsl.pipeline.run.checkpoint`: ``weights_only`` load, content checksum) holding::

    format, format_version   "avzsl-model", 2 (format 1: the paper's network only, ``model_config``; both are read)
    method, method_options   the registered method and its complete options
    dims, model_config       input sizes (audio, visual, text); ``model_config`` for readers of format 1
    state_dict               the method's weights (CPU tensors)
    gamma, calibration       gamma* of stage-1 validation, its mode, range and the scores it applies to (``on``)
    epoch                    e*
    seen_classes             the stage-2 training classes
    config_hash              TrainConfig.result_hash() of the run
    run_identity             digest of the run's identity.json (:mod:`avzsl.pipeline.run.identity`; absent in runs
                             written before it existed), so that a model file of another run is recognised
    cache_info               the training cache's ``cache.json`` (JSON text): encoder, weights, decoding, embedder
    class_phrases            class name -> embedded phrase of every class of the training cache's class table
                             (absent in runs written before it was recorded: readers fall back to the cache)
    test_classes             the test candidate list gamma* is applied to (stage-2 training classes + test-unseen
                             classes; absent in runs written before it was recorded: readers use the split files)

The keys keep their meaning across versions; a key added later is optional for readers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from avzsl.model.coordinate_generalize import options_from_model_and_loss
from avzsl.model.registry import FeatureDims, Method, build_method, get_method
from avzsl.pipeline.run.checkpoint import load_checkpoint, save_checkpoint
from avzsl.pipeline.run.config import TrainConfig
from avzsl.pipeline.run.identity import read_run_identity
from avzsl.pipeline.run.layout import MODEL_PT, RunConfigError

MODEL_FORMAT = "avzsl-model"
MODEL_FORMAT_VERSION = 2
"""2: any registered method (``method``, ``method_options``, ``dims``, ``calibration``); 1: the paper's network
only (``model_config``); both are read."""


def save_run_model(
    run_dir: Path,
    cfg: TrainConfig,
    method: Method,
    dims: FeatureDims,
    best: Mapping[str, Any],
    seen_classes: Sequence[str],
    cache_info: Mapping[str, Any],
    class_phrases: Mapping[str, str],
    test_classes: Sequence[str] | None = None,
) -> None:
    """Write ``RUN/model.pt`` (atomically, with its checksum).

    Args:
        run_dir: the run directory.
        cfg: the run's configuration (method, options, calibration mode, hash).
        method: the trained stage-2 method.
        dims: its input sizes.
        best: the stage-1 result: ``epoch`` (e*), ``gamma`` (gamma*) and ``calibration`` (the search summary).
        seen_classes: the stage-2 training classes.
        cache_info: the training cache's ``cache.json`` content.
        class_phrases: class name -> phrase embedded for it, for every class of the cache's class table (what
            prediction needs to embed a seen class exactly as in training without the cache).
        test_classes: the test candidate list (what prediction compares a candidate list with before applying
            gamma*).
    """
    identity = read_run_identity(run_dir)
    save_checkpoint(
        Path(run_dir) / MODEL_PT,
        {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "method": cfg.method,
            "method_options": dict(cfg.method_options),
            "dims": dims.to_dict(),
            # Input sizes under the former key too: readers of format 1 (predict) check text_dim there.
            "model_config": dims.to_dict(),
            "state_dict": {k: v.cpu() for k, v in method.state_dict().items()},
            "gamma": float(best["gamma"]),
            "calibration": {"mode": cfg.calibration,
                            "on": "scores" if cfg.calibration == "legacy" else "calibration_scores",
                            **(best.get("calibration") or {})},
            "epoch": int(best["epoch"]),
            "seen_classes": list(seen_classes),
            "config_hash": cfg.result_hash(),
            "cache_info": json.dumps(dict(cache_info), sort_keys=True),
            "class_phrases": {str(name): str(phrase) for name, phrase in class_phrases.items()},
            **({"run_identity": identity.digest()} if identity is not None else {}),
            **({"test_classes": [str(c) for c in test_classes]} if test_classes is not None else {}),
        },
    )


def read_model_record(run_dir: Path) -> dict[str, Any]:
    """The payload of ``RUN/model.pt`` (checksum verified) without building the method: what a finished run is
    checked against (:func:`avzsl.pipeline.run.identity.check_run_record`)."""
    path = Path(run_dir) / MODEL_PT
    if not path.is_file():
        raise RunConfigError(f"{run_dir}: no trained model yet ({MODEL_PT} missing); run avzsl-train first")
    return load_checkpoint(path)


def load_run_model(run_dir: Path) -> tuple[Method, dict[str, Any]]:
    """The trained stage-2 method of a run (eval mode) and its metadata (the ``model.pt`` payload).

    Reads format 2 (any registered method) and format 1 (the paper's network, ``model_config`` + bare network
    state dict). The method carries ``calibrated_on`` (``"scores"`` or ``"calibration_scores"``): the scores the
    run's gamma applies to.
    """
    path = Path(run_dir) / MODEL_PT
    if not path.is_file():
        raise RunConfigError(f"{run_dir}: no trained model yet ({MODEL_PT} missing); run avzsl-train first")
    state = load_checkpoint(path)
    if state.get("format") != MODEL_FORMAT:
        raise RunConfigError(f"{path}: not an avzsl model file")
    version = int(state.get("format_version", 1))
    if version > MODEL_FORMAT_VERSION:
        raise RunConfigError(f"{path}: model format {version} is newer than this avzsl reads ({MODEL_FORMAT_VERSION})")
    try:
        if version == 1:
            config = dict(state["model_config"])
            dims = FeatureDims(config["audio_dim"], config["visual_dim"], config["text_dim"])
            method = build_method("coordinate_generalize", dims, options_from_model_and_loss(config, {}, False))
            method.net.load_state_dict(state["state_dict"])
            method.calibrated_on = "scores"
        else:
            get_method(state["method"])
            method = build_method(state["method"], FeatureDims.from_dict(state["dims"]), state["method_options"])
            method.load_state_dict(state["state_dict"])
            method.calibrated_on = (state.get("calibration") or {}).get("on", "calibration_scores")
    except KeyError as exc:
        raise RunConfigError(f"{path}: {exc.args[0] if exc.args else exc}") from exc
    method.eval()
    return method, state


def run_class_phrases(state: Mapping[str, Any]) -> dict[str, str] | None:
    """Class name -> embedded phrase recorded in a ``model.pt`` payload; None for a run written before they were."""
    phrases = state.get("class_phrases")
    return dict(phrases) if isinstance(phrases, Mapping) else None
