"""The README's command list, read from the command line itself so the two cannot drift.

``scripts/readme_sections.py`` writes it between the README's ``command-list`` markers; a test
fails when the README's copy differs from what ``flenwheel --help`` offers.
"""

from __future__ import annotations

import click


def _rows(command: click.Command, prefix: str) -> list[tuple[str, str]]:
    """(``name sub``, first help line) for a command and, for a group, each of its subcommands."""
    name = f"{prefix} {command.name}".strip()
    if isinstance(command, click.Group):
        rows = []
        for sub in sorted(command.commands.values(), key=lambda c: c.name or ""):
            if not sub.hidden:
                rows += _rows(sub, name)
        return rows
    return [(name, command.get_short_help_str(limit=300))]


def command_table(group: click.Group) -> str:
    """A Markdown table of every command and subcommand with its one-line help, in ``--help``'s order."""
    lines = ["| command | what it does |", "|---|---|"]
    for command in sorted(group.commands.values(), key=lambda c: c.name or ""):
        if not command.hidden:
            lines += [f"| `flenwheel {name}` | {text.replace('|', '/')} |" for name, text in _rows(command, "")]
    return "\n".join(lines) + "\n"
