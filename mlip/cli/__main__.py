import sys

from mlip.cli import main

sys.exit(main())
