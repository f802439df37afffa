"""``python -m eventbatch``: the same as the ``eventbatch`` command."""

import sys

from eventbatch.cli import main

sys.exit(main())
