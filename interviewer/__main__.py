"""``python -m interviewer`` runs the CLI."""

import sys

from interviewer.cli import main

sys.exit(main())
