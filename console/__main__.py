"""`python -m console` is `tocsin`, for launching it with this very interpreter."""

import sys

from console.cli import main

sys.exit(main())
