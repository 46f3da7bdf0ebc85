"""``python -m sserd_core.eval ...`` / ``accelerate launch -m sserd_core.eval ...`` = ``sserd eval ...``."""

import sys

from .cli import main

sys.exit(main())
