"""The process a run lives in: `runtime` (the device, derived seeds, every RNG's state, the
process-wide float settings while a run trains), `threads` (the CPU thread count that
follows the load and honours a cgroup quota), `distributed` (torchrun's group, DDP and
sharing work out) and `numbers` (the one parser of numbers given as text). The floor under
everything that computes; `numbers` imports nothing but errors, so the light config can use
it."""
