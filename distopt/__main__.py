"""``python -m distopt``: the ``distopt`` command (how local worker processes start)."""

from .cli import main

main(prog_name="distopt")
