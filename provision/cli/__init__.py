"""The `provision` command line: the click app, the progress views and one module per command."""
