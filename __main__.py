"""Entry point of the Pulumi program (see components/program.py)."""

from components.program import run

run()
