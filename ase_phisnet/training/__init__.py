"""Training of PhiSNet models: data batches, losses, the trainer and its YAML configuration."""

from .config import TrainConfig
from .data import MatrixData, load_frames
from .trainer import Trainer, TrainingDiverged

__all__ = ["MatrixData", "TrainConfig", "Trainer", "TrainingDiverged", "load_frames"]
