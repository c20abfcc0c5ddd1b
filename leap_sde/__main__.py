"""``python -m leap_sde`` is the ``leap-sde`` command line."""
import sys

from .cli import main

sys.exit(main())
