"""The ``mpuflask`` command: a click group whose subcommands live elsewhere.

A subcommand is one line in ``COMMANDS`` (its name and ``module:attribute``).
Modules are imported only when their command runs (or ``--help`` lists it),
so a command whose dependencies are missing cannot break the others.
"""

from __future__ import annotations

import importlib

import click

#: name -> "module:attribute" of a click command. Add a command with one line.
COMMANDS = {
    "upload": "mpuflask.client.cli_commands:upload",
    "download": "mpuflask.client.cli_commands:download",
    "abort": "mpuflask.client.cli_commands:abort",
    "rm": "mpuflask.client.cli_commands:rm",
    "ls": "mpuflask.client.cli_listing:ls",
    "uploads": "mpuflask.client.cli_listing:uploads",
    "sign": "mpuflask.signing:sign_command",
    "serve": "mpuflask.serving.command:serve",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="mpuflask")
def main() -> None:
    """mpuflask: big files through the R2 multipart-upload API."""
