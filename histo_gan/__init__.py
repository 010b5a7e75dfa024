"""histo-gan: synthetic H&E training data for nucleus segmentation."""

__version__ = "0.1.0"
