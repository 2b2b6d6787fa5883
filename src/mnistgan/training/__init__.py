"""The training engine: `trainer` (the Trainer: networks, EMA, optimisers, the loop and
its callbacks), `steps` (one step interface; the factory that picks an engine), its engines
`fastpath` (the seed's hand-derived step) and `graphs` (CUDA graphs), `objectives` (each
GAN objective and its regularisers), `augment` (DiffAugment), `optim` (TensorFlow 1's Adam)
and `stats` (the named per-step statistics). A batch goes trainer -> steps -> objectives ->
models and back as statistics; nothing here writes files or prints."""
