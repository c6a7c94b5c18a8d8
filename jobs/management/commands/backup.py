"""`python manage.py backup create --output PATH` and `backup restore PATH [--validate-only]`.

The same tracked jobs as the Backups page, run in this process. A refused
restore prints why and exits non-zero; the database is left as it was.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.choices import BackupStatus, RestoreStatus
from jobs.models import BackupJob, RestoreJob
from jobs.services import backup, lifecycle


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:150]
    except Exception:
        return "cli:unknown"


class Command(BaseCommand):
    help = "Create a backup archive of the operational tables, or restore one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,restore}")
        create = sub.add_parser("create", help="Write a backup zip.")
        create.add_argument("--output", required=True, help="File to write (its folder must exist).")
        create.add_argument("--overwrite", action="store_true", help="Replace PATH if it exists.")
        restore = sub.add_parser("restore", help="Replace the backed-up tables with an archive's contents.")
        restore.add_argument("path", help="Backup zip to restore.")
        restore.add_argument("--validate-only", action="store_true", help="Check everything, change nothing.")

    def handle(self, *args, action, **opts):
        if action == "create":
            return self._create(opts["output"], opts["overwrite"])
        return self._restore(opts["path"], opts["validate_only"])

    def _create(self, output, overwrite):
        dest = Path(output).expanduser()
        if dest.exists() and (dest.is_dir() or not overwrite):
            raise CommandError(f"{dest} already exists; choose another --output or pass --overwrite.")
        if not dest.parent.is_dir():
            raise CommandError(f"The folder {dest.parent} does not exist.")
        job = backup.create_backup(created_by=_user(), destination=str(dest.resolve()), dispatch=False)
        lifecycle.run_job(job.job_id)
        result = BackupJob.objects.get(pk=job.pk)
        if result.status != BackupStatus.COMPLETED:
            raise CommandError(result.error_message or f"The backup ended as {result.status}.")
        rows = sum(t["rows"] for t in (result.manifest_json or {}).get("tables", []))
        self.stdout.write(
            f"Backup written to {dest}: {result.completed_tables} tables, {rows:,} rows, {result.file_size_bytes:,} bytes."
        )

    def _restore(self, path, validate_only):
        src = Path(path).expanduser()
        if not src.is_file():
            raise CommandError(f"{src} is not a file.")
        if backup.active_restore_exists():
            raise CommandError("Another restore is running; wait for it to finish.")
        restore = backup.create_restore(str(src.resolve()), created_by=_user(), validate_only=validate_only, cli=True,
                                        dispatch=False)  # fmt: skip
        lifecycle.run_job(restore.job_id)
        result = RestoreJob.objects.get(pk=restore.pk)
        if result.status != RestoreStatus.COMPLETED:
            raise CommandError(result.error_message or f"The restore ended as {result.status}.")
        if validate_only:
            self.stdout.write(f"{src} is a valid backup; nothing was changed.")
            return
        items = result.items_restored or {}
        self.stdout.write(f"Restored {sum(items.values()):,} rows into {len(items)} tables from {src}.")
        for table in backup.BACKUP_TABLES:
            if table in items:
                self.stdout.write(f"  {table}: {items[table]:,}")
