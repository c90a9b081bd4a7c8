"""avzsl.model: the trainable AV-GZSL model of "Coordinate and Generalize", its losses, scoring and metrics.

Pure library code: no file I/O, no CLI policy (that lives in avzsl.pipeline).
"""

from avzsl.model.config import LossConfig, ModelConfig
from avzsl.model.losses import LossOutput, cls_loss, compute_losses, kd_loss, mask_loss, pseudo_masks
from avzsl.model.metrics import GZSLMetrics, calibration_grid, gzsl_metrics, per_class_accuracy, search_calibration
from avzsl.model.networks import CoordinateGeneralize, ModelOutput
from avzsl.model.scoring import predict_scores

__all__ = [
    "CoordinateGeneralize",
    "GZSLMetrics",
    "LossConfig",
    "LossOutput",
    "ModelConfig",
    "ModelOutput",
    "calibration_grid",
    "cls_loss",
    "compute_losses",
    "gzsl_metrics",
    "kd_loss",
    "mask_loss",
    "per_class_accuracy",
    "predict_scores",
    "pseudo_masks",
    "search_calibration",
]
