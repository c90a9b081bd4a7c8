"""Registry of AV-GZSL training methods (timm ``@register_model`` style) and the interface every method implements.

A method is an ``nn.Module`` subclass of :class:`Method` registered under a name with :func:`register_method`.
The protocol, data and metric code (``avzsl.pipeline.train.protocol``, ``avzsl.pipeline.train.trainer``,
``avzsl.model.metrics``) only ever talk to this interface, so the paper's method, its baselines (AVCA, CJME,
AVGZSLNet, DeViSE, ALE, SJE, TCAF, a cross-entropy probe), the closed-form floors (ridge, ESZSL) and the frozen
zero-shot scorer share the same two-stage protocol, calibration and metrics.

One file per method under ``model/`` (e.g. ``model/avca.py``); each file decorates its class::

    @register_method("avca", description="AVCA (Mercea et al., CVPR 2022): cross-modal attention ...")
    class AVCA(Method):
        Options = AVCAOptions          # frozen dataclass of the method's hyper-parameters

        def __init__(self, dims: FeatureDims, options: AVCAOptions) -> None: ...
        def training_loss(self, batch, labels, class_emb) -> LossTerms: ...
        def scores(self, batch, class_emb) -> torch.Tensor: ...

Conventions every method follows:

- **Scores are higher-is-better** ``(N, C)`` tensors over the candidate classes (columns). Distance-based methods
  return the negated distance. Calibrated stacking subtracts a calibration value from the seen columns of
  ``calibration_scores`` (by default the same as ``scores``); the calibration search lives in
  :mod:`avzsl.model.metrics` and is method-agnostic.
- **Options** are a frozen dataclass (``Method.Options``) with defaults; :func:`build_method` builds it from a plain
  dict (unknown keys are an error), so checkpoints store ``{"method": name, "options": {...}, "dims": {...}}``.
- **Optimisation** defaults to Adam with the run's learning rate; a method that needs its own optimiser or
  learning-rate schedule (AVCA) overrides :meth:`Method.configure_optimizer` and :meth:`Method.epoch_end`.
- Methods that need per-window sequences (TCAF) set ``needs_sequences=True`` at registration; the protocol then
  loads the cache's per-window features of every video (only for such methods) and the batch carries zero-padded
  ``(B, T, D)`` sequences and a ``(B, T)`` validity mask. :meth:`Method.sequence_windows` says how many windows
  per video to keep (T is the longest kept sequence of the protocol part).
- Methods without training (the frozen zero-shot scorer) register with ``trainable=False``; the protocol skips the
  optimisation and evaluates them with the same calibration and metrics.
- Closed-form methods (ridge, ESZSL) are fitted, not optimised: :meth:`Method.fit_settings` returns the size of
  their regulariser grid (> 0) and :meth:`Method.fit` solves for one setting on the training part given to
  :meth:`Method.prepare`. The protocol then builds no optimiser and draws no batches: stage-1 "epoch" ``i + 1`` is
  ``fit(i)`` followed by the usual validation and calibration (so e* is the setting with the best validation H,
  ``--epochs`` does not apply), and stage 2 calls only ``fit(e* - 1)``. Every setting is a fit from scratch.

This module imports only torch; built-in method modules are imported lazily on first lookup.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

_logger = logging.getLogger(__name__)

DEFAULT_METHOD = "coordinate_generalize"

# Modules whose import registers the built-in methods; each is one method file under model/. A module that is
# listed here but missing (a method still being written) is skipped with a debug message, never an import error.
_BUILTIN_MODULES: tuple[str, ...] = (
    "avzsl.model.coordinate_generalize",
    "avzsl.model.avca",
    "avzsl.model.cjme",
    "avzsl.model.avgzslnet",
    "avzsl.model.devise",
    "avzsl.model.ale",
    "avzsl.model.sje",
    "avzsl.model.tcaf",
    "avzsl.model.ce_probe",
    "avzsl.model.ridge",
    "avzsl.model.eszsl",
    "avzsl.model.zero_shot",
    "avzsl.model.conse",
)


@dataclass(frozen=True)
class FeatureDims:
    """Input sizes a method is built for (read from the feature cache)."""

    audio_dim: int
    """D_A, size of one audio feature vector."""
    visual_dim: int
    """D_V, size of one visual feature vector."""
    text_dim: int
    """D_W, size of one class-name embedding."""

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureDims:
        return cls(int(d["audio_dim"]), int(d["visual_dim"]), int(d["text_dim"]))


@dataclass
class FeatureBatch:
    """The inputs of one batch of B videos.

    Attributes:
        audio: ``(B, D_A)`` float32, per-video (window-averaged) audio features.
        visual: ``(B, D_V)`` float32, per-video visual features.
        audio_seq: ``(B, T, D_A)`` float32 per-window audio features, zero-padded; None unless the method
            registered with ``needs_sequences=True``.
        visual_seq: ``(B, T, D_V)`` float32 per-window visual features, zero-padded, or None.
        seq_mask: ``(B, T)`` bool, True where a window is real, or None.
    """

    audio: torch.Tensor
    visual: torch.Tensor
    audio_seq: torch.Tensor | None = None
    visual_seq: torch.Tensor | None = None
    seq_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    def index(self, rows: torch.Tensor | slice) -> FeatureBatch:
        """The sub-batch of ``rows`` (a ``(B',)`` long tensor or a slice)."""

        def take(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[rows]

        return FeatureBatch(self.audio[rows], self.visual[rows], take(self.audio_seq), take(self.visual_seq),
                            take(self.seq_mask))

    def to(self, device: torch.device | str) -> FeatureBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return FeatureBatch(self.audio.to(device), self.visual.to(device), move(self.audio_seq),
                            move(self.visual_seq), move(self.seq_mask))


@dataclass
class LossTerms:
    """The objective of one training step."""

    total: torch.Tensor
    """Scalar to call ``.backward()`` on."""
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    """Named scalar parts (logged per epoch, e.g. ``{"cls": ..., "kd": ..., "mask": ...}``)."""


@dataclass(frozen=True)
class NoOptions:
    """Options of a method that has no hyper-parameters."""


class Method(nn.Module):
    """Base class of every registered AV-GZSL method.

    Subclasses set ``Options`` (a frozen dataclass with defaults) and implement :meth:`training_loss` and
    :meth:`scores`. ``self.dims`` and ``self.options`` are set by ``__init__``.
    """

    Options: ClassVar[type] = NoOptions
    name: ClassVar[str] = ""
    """Set by :func:`register_method`."""
    hash_neutral_options: ClassVar[dict[str, Any]] = {}
    """Options added after runs of the method were stored, each with the value that gives the former numbers: a
    run's configuration hash leaves them out at that value, and a stored configuration without them reads back
    with that value (whatever today's default), so a run directory written before they existed keeps its hash and
    its meaning (resumes, is found complete)."""

    def __init__(self, dims: FeatureDims, options: Any) -> None:
        super().__init__()
        self.dims = dims
        self.options = options

    @classmethod
    def sequence_windows(cls, options: Any) -> int | None:
        """For a method registered with ``needs_sequences``: the most windows per video the protocol keeps (the
        first ones; longer videos are trimmed), or None to keep every window. Default None."""
        return None

    # -- training -------------------------------------------------------------------------------------------------
    def prepare(self, train: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        """Called once before training with the whole training part (e.g. to fit input standardization).

        Args:
            train: all N training videos.
            labels: ``(N,)`` long column index into ``class_emb``.
            class_emb: ``(C, D_W)`` embeddings of the training (seen) classes.
        """

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        """The objective of one batch.

        Args:
            batch: B training videos.
            labels: ``(B,)`` long column index into ``class_emb``.
            class_emb: ``(C, D_W)`` embeddings of the training (seen) classes.
        """
        raise NotImplementedError

    def fit_settings(self) -> int:
        """For a closed-form method: how many settings its regulariser grid has (stage-1 "epochs"); 0 (default)
        for a method trained by gradient steps."""
        return 0

    def fit(self, setting: int) -> dict[str, float]:
        """Closed-form fit, from scratch, of grid setting ``setting`` (0-based) on the part given to :meth:`prepare`.

        Only called when :meth:`fit_settings` is > 0, after :meth:`prepare`. Returns the numbers of the epoch log:
        ``"loss"`` (the fit's training objective, e.g. the mean squared residual) and the setting's regularisers
        under names of their own (``reg_*``: the record's ``gamma`` is the calibration shift).
        """
        raise NotImplementedError

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The optimiser; default Adam over all parameters with the run's learning rate."""
        return torch.optim.Adam(self.parameters(), lr=lr)

    def epoch_end(self, optimizer: torch.optim.Optimizer, epoch: int, val_metrics: dict[str, float] | None) -> None:
        """Hook after every epoch (e.g. a learning-rate schedule); ``val_metrics`` holds S/U/H/ZSL in stage 1."""

    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        """Method state outside ``state_dict`` that a resume needs (e.g. a scheduler); default none."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state_for_checkpoint`."""

    # -- inference ------------------------------------------------------------------------------------------------
    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """Higher-is-better scores ``(B, C)`` of B videos for C candidate classes (eval mode, no grad)."""
        raise NotImplementedError

    def calibration_scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """The scores calibrated stacking shifts, ``(B, C)``; same argmax as :meth:`scores`.

        Default: :meth:`scores`. A method whose scores saturate (probabilities near 0 or 1) returns a monotone
        transform with a usable range here (e.g. log-probabilities).
        """
        return self.scores(batch, class_emb)


@dataclass(frozen=True)
class MethodEntry:
    """A registered method."""

    name: str
    cls: type[Method]
    description: str
    needs_sequences: bool = False
    trainable: bool = True


_REGISTRY: dict[str, MethodEntry] = {}
_builtins_loaded = False

_M = TypeVar("_M", bound=type[Method])


def register_method(name: str, *, description: str, needs_sequences: bool = False,
                    trainable: bool = True) -> Callable[[_M], _M]:
    """Class decorator registering a :class:`Method` subclass under ``name``.

    Raises:
        ValueError: the name is taken by another class.
    """

    def decorate(cls: _M) -> _M:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"method {name!r} is already registered by {existing.cls.__qualname__}")
        cls.name = name
        _REGISTRY[name] = MethodEntry(name, cls, description, needs_sequences, trainable)
        return cls

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            _logger.debug("built-in method module %s is not present", module)
    _builtins_loaded = True


def list_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodEntry:
    """The entry registered under ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    _load_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name]


def method_options(name: str, options: dict[str, Any] | None = None) -> Any:
    """The method's ``Options`` dataclass built from a plain dict; unknown keys raise ``ValueError``."""
    cls = get_method(name).cls.Options
    options = dict(options or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) for method {name!r}: {unknown}; known: {sorted(known)}")
    return cls(**options)


def build_method(name: str, dims: FeatureDims, options: dict[str, Any] | None = None) -> Method:
    """A freshly initialised method (seed torch before calling to fix the initial weights)."""
    entry = get_method(name)
    return entry.cls(dims, method_options(name, options))


def options_to_dict(options: Any) -> dict[str, Any]:
    """Plain JSON-compatible dict of a method's options dataclass."""
    return dataclasses.asdict(options)
