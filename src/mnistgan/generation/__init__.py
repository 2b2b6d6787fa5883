"""Forgeries from a trained generator; nothing here trains. The one place the CLI, the
metrics, the web page and the Trainer's pictures draw forgeries from. Its parts:
`load` (a checkpoint's networks: the EMA generator, its batch-norm statistics recomputed),
`draw` (noise, labels, G's forgeries, sampling in chunks), `walks` (latent walks) and
`output` (writing forgeries as .npy arrays or PNG grids). Inside, forgeries are
N x C x 28 x 28 uint8; what a user gets (`sample`, the .npy files) drops a grey image's
channel axis (images.public).
"""
from __future__ import annotations

from .draw import (CHUNK, MAX_GRID, MAX_SAMPLES, class_labels, cycle_labels, forge, generate, noise, sample,
                   sample_chunks, sample_to_file, whole)
from .load import Networks, load_generator, load_networks, recalibrate_batch_norm
from .output import check_output, write
from .walks import MAX_WALK, interpolate, slerp, walk

__all__ = ["CHUNK", "MAX_GRID", "MAX_SAMPLES", "MAX_WALK", "class_labels", "cycle_labels", "forge", "generate", "noise",
           "sample", "sample_chunks", "sample_to_file", "whole", "Networks", "load_generator", "load_networks",
           "recalibrate_batch_norm", "check_output", "write", "interpolate", "slerp", "walk"]
