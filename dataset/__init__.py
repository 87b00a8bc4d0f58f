"""The output format, without Beam: paths, schemas, the shard writer and reader, side files.

``pipeline/`` writes it and ``trainer/`` reads it; ``read_samples(out_dir)`` iterates a finished
output folder's samples with their metadata and side-file vectors by key.
"""

from dataset.reader import read_samples, read_shard

__all__ = ["read_samples", "read_shard"]
