"""The ``flenwheel`` command line.

Every command lives in a module of this package that defines ``register(cli)``; modules are
discovered at start-up, so a new stage adds a module and touches nothing else. Modules whose
name starts with ``_`` hold options shared by several commands. Exit codes:
0 success, 1 a problem the message explains (``FlenwheelError``, failed checks), 2 wrong usage.
Commands import heavy libraries (torch, diffusers) inside their bodies, so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from ..core.data.errors import FlenwheelError


class FlenwheelGroup(click.Group):
    """A click group that turns user-facing errors into one readable line and exit code 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FlenwheelError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=FlenwheelGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="flenwheel", prog_name="flenwheel")
def cli() -> None:
    """FLENwheel: turn 10-20 photos of one character into a FLUX character LoRA."""


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(cli)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="flenwheel")
