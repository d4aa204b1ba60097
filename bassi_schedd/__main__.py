"""Allow ``python -m bassi_schedd``."""

from bassi_schedd.cli import main

raise SystemExit(main())
