"""The replayer's request transforms: each turns one parsed request into zero, one or several; the pipeline runs
them in order (``pipeline.py`` says which and why)."""

from workers.replay.transforms.base import Transform
from workers.replay.transforms.options import TransformOptions
from workers.replay.transforms.pipeline import TransformPipeline

__all__ = ["Transform", "TransformOptions", "TransformPipeline"]
