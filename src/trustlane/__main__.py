"""`python -m trustlane` runs the command line."""

from trustlane.cli.main import run

run()
