"""Image anonymisation: faces and licence plates found offline, then masked irreversibly."""
