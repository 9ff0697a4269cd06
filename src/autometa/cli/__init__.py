"""The `autometa` command line: thin typer commands over the library."""
