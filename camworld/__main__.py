"""`python -m camworld` is the `camworld` command."""

import sys

from camworld.cli import main

sys.exit(main())
