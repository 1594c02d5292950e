"""``python -m nvdsync``."""

from nvdsync.cli import main

main()
