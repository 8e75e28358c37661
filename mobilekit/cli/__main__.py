import sys

from mobilekit.cli import main

sys.exit(main())
