"""``python -m polymodal`` (also what ``torchrun -m polymodal`` runs)."""

import sys

from polymodal.cli import main, process_exit

process_exit(main())
