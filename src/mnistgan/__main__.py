"""`python -m mnistgan ...`, the form torchrun launches: `torchrun --nproc-per-node 4 -m mnistgan train ...`."""
import sys

from .cli import main

sys.exit(main())
