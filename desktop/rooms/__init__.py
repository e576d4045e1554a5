"""One module per room of the main window."""
