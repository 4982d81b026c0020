"""`python -m tui` is `bastion`."""

import sys

from tui.cli import main

sys.exit(main())
