"""Callbacks shared by every module: checkpoints, chunked runs, divergence guard, progress,
sample grids, prediction and synthetic-dataset export."""

from histo_gan.callbacks.checkpoint import RunCheckpoint
from histo_gan.callbacks.chunk import ChunkTimer
from histo_gan.callbacks.divergence import DivergenceError, DivergenceGuard
from histo_gan.callbacks.instance_writer import InstanceMapWriter
from histo_gan.callbacks.metric_plot import MetricPlot
from histo_gan.callbacks.progress import StepProgressBar
from histo_gan.callbacks.sample_grid import SampleGrid
from histo_gan.callbacks.synthetic_export import SyntheticExport

__all__ = [
    "ChunkTimer",
    "DivergenceError",
    "DivergenceGuard",
    "InstanceMapWriter",
    "MetricPlot",
    "RunCheckpoint",
    "SampleGrid",
    "StepProgressBar",
    "SyntheticExport",
]
