"""Base class for MDX Hub management commands: one-line errors, non-zero exit, nothing written."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class MdxCommand(BaseCommand):
    """Runs ``run()`` in one transaction; bad input becomes a one-line CommandError (exit 1).

    Subclasses list the exceptions that mean "bad input" in ``user_errors``; their message is
    shown as is. Commands that must commit in batches override ``handle`` and keep the parser.
    """

    user_errors: tuple[type[Exception], ...] = ()

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        # argparse prints the whole usage block on an argument error; scripts want one line.
        def error(message: str):
            if parser.called_from_command_line:
                parser.exit(2, f"{parser.prog}: error: {message}\n")
            raise CommandError(f"Error: {message}")

        parser.error = error
        return parser

    def handle(self, *args, **options):
        try:
            with transaction.atomic():
                return self.run(**options)
        except self.user_errors as exc:
            raise CommandError(str(exc)) from None

    def run(self, **options):
        raise NotImplementedError
