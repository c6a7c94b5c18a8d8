"""`python manage.py ensure_roles`: create the Operators and Viewers groups with their permissions."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dashboard.roles import ensure_roles


class Command(BaseCommand):
    help = (
        "Create the Operators and Viewers groups and set their model permissions to the declared set "
        "(safe to run any number of times)."
    )

    def handle(self, *args, **options):
        for change in ensure_roles():
            state = "created" if change.created else "checked"
            self.stdout.write(
                f"{change.group}: {state}, {len(change.added)} permission(s) added, {len(change.removed)} removed."
            )
            if options["verbosity"] > 1:
                for key in change.added:
                    self.stdout.write(f"  + {key}")
                for key in change.removed:
                    self.stdout.write(f"  - {key}")
