"""`python -m flanjax` is the `flanjax` command."""
import sys

from flanjax.cli import main

sys.exit(main())
