"""The ``distopt`` command: a thin layer over the library.

Each subcommand parses its flags, calls one library function and prints; the commands
live in the modules that own the behaviour and are registered here.
"""

from __future__ import annotations

import logging
import sys

import click

from ..defaults import VERSION as __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="distopt")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """distopt: distributed parallel hyperparameter optimization."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# Subcommands register themselves here, one import per module that owns them.
from .run import register as _register_run; _register_run(main)  # noqa: E402,E702
from .monitor import register as _register_monitor; _register_monitor(main)  # noqa: E402,E702

if __name__ == "__main__":  # pragma: no cover
    main()
