"""``python -m polymodal`` (also what ``torchrun -m polymodal`` runs)."""

import sys

from polymodal.cli import main

sys.exit(main())
