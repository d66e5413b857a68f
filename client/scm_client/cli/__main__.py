"""``python -m scm_client.cli``: the `scm` command."""

import sys

from . import main

sys.exit(main())
