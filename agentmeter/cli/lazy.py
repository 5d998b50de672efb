"""A click group whose subcommands' modules are imported only when one runs.

``agentmeter report`` must start in a fraction of a second, so the group
holds each command as ``"module:attribute"`` (under ``agentmeter.cli``) with
its short help: ``agentmeter --help`` lists every command from that table
without importing one, and ``agentmeter report`` imports ``report.py`` and
what it needs, not the server, Stripe, the importer or rich's tables.
``group.commands`` stays a mapping of every command (looking one up imports
it), so code that walks the commands, as the tests do, sees them all; a
command added with ``add_command`` is an ordinary, already imported one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import click

from .common import EXIT_USAGE


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is (``"report:stats"``: ``agentmeter.cli.report.stats``) and its
    short help as ``agentmeter --help`` shows it (tests check it against the command's)."""

    target: str
    short_help: str


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name; a lazy one is imported when first looked up."""

    def __init__(self, lazy: Mapping[str, LazyCommand]) -> None:
        self.lazy = dict(lazy)
        self._loaded: dict[str, click.Command] = {}

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            command = _import_command(self.lazy[name].target)
            self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self.lazy.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if self._loaded.pop(name, None) is None:
            del self.lazy[name]
        else:
            self.lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.lazy.keys() | self._loaded.keys()))

    def __len__(self) -> int:
        return len(self.lazy.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.lazy or name in self._loaded


class MissingExtra(click.ClickException):
    """A command's module needs a package that is not installed: a usage error."""

    exit_code = EXIT_USAGE


def _import_command(target: str) -> click.Command:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(f"agentmeter.cli.{module_name}")
    except ImportError as exc:
        if exc.name is None or exc.name.startswith("agentmeter"):
            raise  # our own bug: the group's last line of defence reports it
        raise MissingExtra(
            f"the command needs extra packages ({exc.name} is missing): "
            "pip install 'agentmeter[cli]'"
        ) from None
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"agentmeter.cli.{target} is not a click command")
    return command


class LazyGroup(click.Group):
    """A :class:`click.Group` over :class:`LazyCommands`; its help imports no command."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(lazy_commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with a lazy command's short help from the table (not imported)."""
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        for name in names:
            if commands.is_loaded(name) or name not in commands.lazy:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # Shortened as click shortens a command's help (a stand-in command does it).
                stand_in = click.Command(name, help=commands.lazy[name].short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
