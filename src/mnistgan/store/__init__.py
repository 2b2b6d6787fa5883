"""What a run leaves on disk and how it is read back: `files` (atomic writes, the one rule
for writing inside a run folder without following links, bounded reads of regular files,
the run lock, the cache folder), `rundir` (a run folder's layout, its log and config, the
checks made before a resume or an evaluation writes) and `checkpoint` (safetensors
checkpoints: sized from their header and their config's networks before any tensor is read,
and the one choice of checkpoint every reader makes). Below the models and the training
engine: nothing here knows how a GAN learns."""
