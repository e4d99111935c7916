"""`python -m screens` is `tocsin`, for launching it with this very interpreter."""

import sys

from screens.entry import main

sys.exit(main())
