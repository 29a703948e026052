"""`python -m components`: the command line (components/cli.py), its exit code to the shell."""

import sys

from components.cli import main

sys.exit(main())
