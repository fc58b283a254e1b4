"""`python -m provision`: the same as the `provision` console script."""

from provision.cli.main import main

main()
