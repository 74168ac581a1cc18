"""Subcommands imported when they run, not when the command line starts.

The commands live in packages with heavy dependencies (BentoML, torch, the Kubernetes client,
Locust, matplotlib), most of which a given command never touches: importing them all made
``mlcanary --help`` take seconds. The top-level group therefore lists each subcommand by name,
with the one-line help its listing shows, and imports its module only when it is invoked (or
asked for its own help or completions). This is click's documented lazy-group pattern
(click.palletsprojects.com, "Lazily Loading Subcommands"), on typer's group class so that help
keeps typer's formatting.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import typer
import typer.main

# typer carries its own copy of click, on which its group class is built; the placeholder and
# the errors must be of that click, not of a click package that may or may not be installed.
from typer import _click as click
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperCommand, TyperGroup

__all__ = ["LazyCommand", "LazyGroup", "load_command"]


@dataclass(frozen=True)
class LazyCommand:
    """A subcommand: the ``module:attribute`` holding its typer app or command function, the
    one-line help the top-level listing shows (a test checks it is the command's own), and the
    extra of the package its dependencies come with, named when one is missing."""

    target: str
    help: str
    extra: str | None = None


def load_command(name: str, target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    loaded = getattr(importlib.import_module(module), attribute)
    if not isinstance(loaded, typer.Typer):
        single = typer.Typer()
        single.command(name)(loaded)
        loaded = single
    command = typer.main.get_command(loaded)
    command.name = name
    return command


class _Placeholder(TyperCommand):
    """Stands in the listing; whatever needs more than the name and the help loads the real
    command and hands over to it."""

    def __init__(self, group: LazyGroup, name: str, entry: LazyCommand) -> None:
        super().__init__(name, help=entry.help, short_help=entry.help)
        self._group = group

    def _real(self) -> click.Command:
        assert self.name is not None
        return self._group.loaded(self.name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self._real().make_context(info_name, args, parent, **extra)


class LazyGroup(TyperGroup):
    """Give it the subcommands with `lazy`; commands registered on the typer app as usual
    (``@app.command()``) are loaded at once."""

    lazy: dict[str, LazyCommand] = {}  # noqa: RUF012 - set once, by the app's module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def loaded(self, name: str) -> click.Command:
        if name not in self._loaded:
            entry = self.lazy[name]
            try:
                self._loaded[name] = load_command(name, entry.target)
            except ModuleNotFoundError as exc:
                if entry.extra is None or (exc.name or "").split(".")[0] == "mlcanary":
                    raise
                raise ClickException(
                    f"mlcanary {name} needs {exc.name}, which comes with the {entry.extra!r} "
                    f"extra: pip install 'mlcanary[{entry.extra}]'"
                ) from None
        return self._loaded[name]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return self._loaded.get(cmd_name) or _Placeholder(self, cmd_name, self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.lazy:
            return args[0], self.loaded(args[0]), args[1:]
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # typer suggests among the commands it holds; the lazy ones count too.
            close = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if close and "Did you mean" not in exc.message:
                suggestions = ", ".join(repr(name) for name in close)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise
