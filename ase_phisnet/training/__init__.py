"""Training of PhiSNet models: data batches, losses, the trainer, its YAML configuration and
recipes (every run that makes one model, :mod:`.recipe`)."""

from .config import TrainConfig
from .data import MatrixData, load_frames
from .trainer import Trainer, TrainingDiverged

__all__ = ["MatrixData", "TrainConfig", "Trainer", "TrainingDiverged", "load_frames"]
