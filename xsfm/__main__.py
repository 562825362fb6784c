"""``python -m xsfm``."""

from __future__ import annotations

import sys

from xsfm.cli import main

sys.exit(main())
