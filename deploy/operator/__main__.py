"""``python -m deploy.operator``: the operator process (deploy/operator/cli.py)."""

import sys

from deploy.operator.cli import main

sys.exit(main())
