"""The `trustlane` command line: one module per command group."""
