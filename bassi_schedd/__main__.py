"""Allow ``python -m bassi_schedd``."""

from bassi_schedd.cli.main import main

raise SystemExit(main())
