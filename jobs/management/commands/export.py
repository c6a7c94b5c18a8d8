"""`python manage.py export {events,alerts} --format FMT --output PATH [--since ISO] [--until ISO] [--camera ID]`.

Runs the same tracked export job as the web page, in this process, writing
straight to PATH (atomically: a temporary name beside it, then a rename).
"""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from jobs.choices import ExportFormat, ExportStatus
from jobs.models import ExportJob
from jobs.services import exports, lifecycle


class Command(BaseCommand):
    help = "Export events or alerts to csv, json, zip (csv inside) or xlsx."

    def add_arguments(self, parser):
        parser.add_argument("export_type", choices=["events", "alerts"])
        parser.add_argument("--format", dest="export_format", choices=ExportFormat.values, default="csv")
        parser.add_argument("--output", required=True, help="File to write (its folder must exist).")
        parser.add_argument("--since", help="ISO date or date-time (inclusive); naive means the console's time zone.")
        parser.add_argument("--until", help="ISO date or date-time (exclusive).")
        parser.add_argument("--camera", action="append", default=[], help="Camera id; repeat for several.")
        parser.add_argument("--overwrite", action="store_true", help="Replace PATH if it exists.")

    def handle(self, *args, export_type, export_format, output, since, until, camera, overwrite, **opts):
        dest = Path(output).expanduser()
        if dest.exists() and (dest.is_dir() or not overwrite):
            raise CommandError(f"{dest} already exists; choose another --output or pass --overwrite.")
        if not dest.parent.is_dir():
            raise CommandError(f"The folder {dest.parent} does not exist.")
        prefix = "started_at" if export_type == "events" else "created_at"
        query = QueryDict(mutable=True)
        if since:
            query[f"{prefix}__gte"] = since
        if until:
            query[f"{prefix}__lt"] = until
        if camera:
            query.setlist("camera", camera)
        try:
            filters = exports.clean_filters(export_type, query)
        except ValidationError as exc:
            raise CommandError(" ".join(m.replace("Started from", "--since").replace("Created from", "--since")
                                        .replace("Started before", "--until").replace("Created before", "--until")
                                        for m in exc.messages))  # fmt: skip
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
        export = exports.create_export(
            export_type, export_format, filters, created_by=f"cli:{user}"[:150],
            destination=str(dest.resolve()), dispatch=False,
        )  # fmt: skip
        lifecycle.run_job(export.job_id)
        export = ExportJob.objects.get(pk=export.pk)
        if export.status != ExportStatus.COMPLETED:
            raise CommandError(export.error_message or f"The export ended as {export.status}.")
        self.stdout.write(
            f"Wrote {export.processed_items:,} {export_type} to {dest} ({export.output_size_bytes:,} bytes, job {export.job_id})."
        )
