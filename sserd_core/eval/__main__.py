"""``python -m sserd_core.eval ...`` / ``accelerate launch -m sserd_core.eval ...`` = ``sserd eval ...``
(through the one command-line runner, :func:`sserd_core.cli.main`)."""

import sys

from ..cli import main

argv = sys.argv[1:]
sys.exit(main(argv if argv[:1] == ["eval"] else ["eval", *argv]))
