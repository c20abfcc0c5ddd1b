"""``python -m leap_sde.validate [--quick | --full] [--only NAME ...] [--out DIR]``."""
from .runner import main

raise SystemExit(main())
