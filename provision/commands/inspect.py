"""placeholder"""

import click


@click.command()
@click.argument("host")
def inspect(host: str) -> None:
    """x"""
