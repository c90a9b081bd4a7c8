"""Frozen, validated configuration of the model (architecture) and of the training objective (losses).

Both dataclasses round-trip through plain dicts (``to_dict`` / ``from_dict``) so a checkpoint can store them as
JSON-compatible data and rebuild exactly the same model. Every field is documented once, here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

LOSS_VARIANTS = ("cls", "cls+kd", "cls+kd+mask")
TOPK_BY = ("magnitude", "value")
MASK_NORMS = ("l2", "l1", "mse")
PSEUDO_MASK_SCOPES = ("sample", "batch")
SIMILARITIES = ("dot", "cosine")
MASK_RATIO_MEANINGS = ("ones", "zeros")
TEXT_FORMS = ("mlp", "residual", "linear")


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, refusing unknown keys (a typo in a checkpoint must not pass silently)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {unknown}; known keys: {sorted(names)}")
    return cls(**d)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`avzsl.model.networks.CoordinateGeneralize` (paper section 4 and 5.3)."""

    audio_dim: int = 512
    """D_A, size of the input audio feature a (SeLaVi: 512)."""
    visual_dim: int = 512
    """D_V, size of the input visual feature v (SeLaVi: 512)."""
    text_dim: int = 300
    """D_W, size of the class-name embedding w (word2vec/fastText 300, GloVe 50, ...)."""
    att_dim: int = 300
    """Output size of ATT (eq. 2), i.e. of c_v and c_a (paper: 300)."""
    embed_dim: int = 64
    """Size of the common space of f_v, f_a, f_w (paper: 64)."""
    mask_hidden: int = 512
    """Hidden width of the 2-layer mask MLPs psi_V, psi_A (not given in the paper)."""
    embed_hidden: int = 256
    """Hidden width of the 2-layer embedding MLPs f_v, f_a, f_w (not given in the paper)."""
    att_heads: int = 4
    """Number of attention heads in ATT; must divide att_dim (not given in the paper)."""
    att_ff: int = 600
    """Hidden width of ATT's feed-forward block (not given in the paper)."""
    dropout: float = 0.1
    """Dropout inside ATT (attention weights, feed-forward, residual branches); not given in the paper."""
    tau: float = 1.0
    """Softmax temperature of eq. 3/4 (paper: 1)."""
    branch_beta: float = 0.5
    """beta of eq. 6, weight of the visual branch in p = beta p_v + (1 - beta) p_a (paper: 0.5)."""
    similarity: str = "dot"
    """Logits of eq. 3/4: "dot" = f(c) . f_w(w) / tau (the paper's literal form), "cosine" = the same on
    L2-normalised embeddings (bounded logits; tau then sets the sharpness). Not fixed by the paper."""
    learn_temperature: bool = False
    """Learn the logit scale 1/tau (initialised at 1/tau, one scalar shared by both branches); not in the paper."""
    text_form: str = "mlp"
    """Form of f_w: "mlp" (the paper's two-layer MLP), "residual" (a linear map plus that MLP with its output layer
    initialised at zero: starts linear) or "linear" (one layer); not fixed by the paper beyond "two-layer MLP"."""
    text_dropout: float = 0.0
    """Dropout on the hidden units of f_w's MLP (training only); not given in the paper."""

    def __post_init__(self) -> None:
        for name in ("audio_dim", "visual_dim", "text_dim", "att_dim", "embed_dim", "mask_hidden", "embed_hidden",
                     "att_heads", "att_ff"):
            _check_positive_int(name, getattr(self, name))
        if self.att_dim % self.att_heads != 0:
            raise ValueError(f"att_heads ({self.att_heads}) must divide att_dim ({self.att_dim})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.tau > 0.0:
            raise ValueError(f"tau must be > 0, got {self.tau!r}")
        _check_choice("similarity", self.similarity, SIMILARITIES)
        _check_choice("text_form", self.text_form, TEXT_FORMS)
        if not 0.0 <= self.text_dropout < 1.0:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout!r}")
        if not 0.0 <= self.branch_beta <= 1.0:
            raise ValueError(f"branch_beta must be in [0, 1], got {self.branch_beta!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-compatible dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``, missing keys take the defaults."""
        return _from_dict(cls, d)


@dataclass(frozen=True)
class LossConfig:
    """Training objective L = L_CLS + lambda_kd L_KD + lambda_mask L_M (eq. 11) and its open choices."""

    variant: str = "cls+kd+mask"
    """Which terms are on (Table 3 ablation): "cls", "cls+kd" or "cls+kd+mask"."""
    lambda_kd: float = 1.0
    """lambda_1 of eq. 11 (paper: 1)."""
    lambda_mask: float = 0.5
    """lambda_2 of eq. 11 (paper: 0.5)."""
    mask_ratio: float = 0.1
    """rho, proportion of elements set to 1 in a pseudo mask (eq. 9): 0.1 UCF/ActivityNet, 0.2 VGGSound."""
    topk_by: str = "magnitude"
    """Rank gradient elements by "magnitude" (|g|) or signed "value" (g) to build the top-k set of eq. 9."""
    mask_norm: str = "l2"
    """Norm of eq. 10: "l2" (per-sample Euclidean norm), "l1" (per-sample sum of |.|), "mse" (mean squared
    error over all elements); per-sample norms are averaged over the batch."""
    pseudo_mask_scope: str = "sample"
    """"sample": top-k per sample; "batch": top-k of the batch-summed score, one mask shared by the batch."""
    mask_ratio_meaning: str = "ones"
    """What rho counts: "ones" = the share of elements set to 1 in the pseudo mask (k = rho D, the literal
    reading of eq. 9); "zeros" = the share masked out (k = (1 - rho) D elements kept)."""

    def __post_init__(self) -> None:
        _check_choice("variant", self.variant, LOSS_VARIANTS)
        _check_choice("topk_by", self.topk_by, TOPK_BY)
        _check_choice("mask_norm", self.mask_norm, MASK_NORMS)
        _check_choice("pseudo_mask_scope", self.pseudo_mask_scope, PSEUDO_MASK_SCOPES)
        _check_choice("mask_ratio_meaning", self.mask_ratio_meaning, MASK_RATIO_MEANINGS)
        if self.lambda_kd < 0.0 or self.lambda_mask < 0.0:
            raise ValueError(f"lambda_kd and lambda_mask must be >= 0, got {self.lambda_kd!r}, {self.lambda_mask!r}")
        if not 0.0 <= self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1], got {self.mask_ratio!r}")

    @property
    def ones_ratio(self) -> float:
        """The share of pseudo-mask elements set to 1 (eq. 9's rho under the configured meaning)."""
        return self.mask_ratio if self.mask_ratio_meaning == "ones" else 1.0 - self.mask_ratio

    @property
    def use_kd(self) -> bool:
        """Whether L_KD (eq. 5) enters the total."""
        return self.variant in ("cls+kd", "cls+kd+mask")

    @property
    def use_mask(self) -> bool:
        """Whether L_M (eq. 10) enters the total (and the gradients of eq. 8 are computed)."""
        return self.variant == "cls+kd+mask"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-compatible dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``, missing keys take the defaults."""
        return _from_dict(cls, d)
