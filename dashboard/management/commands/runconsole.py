"""`make run`: migrate, bootstrap, then run gunicorn (web) and the django-q2 cluster (worker).

Both children run in their own process groups so that one Ctrl-C reaches only
this supervisor, which then stops them in order and waits for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from dashboard.services.bootstrap import ensure_all_schedules, ensure_first_operator


class Command(BaseCommand):
    help = "Run the Watchpost console: web server (gunicorn) and background worker (django-q2)."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="Load demo data first (seed_demo).")
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "3")))
        parser.add_argument("--no-worker", action="store_true", help="Run only the web server.")

    def handle(self, *args, **opts):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("collectstatic", interactive=False, verbosity=0)
        created = ensure_first_operator()
        if created:
            user, password = created
            self.stdout.write(
                self.style.WARNING(f"Created the first operator account: user '{user}', password '{password}'")
            )
            self.stdout.write("Write it down now: it is shown only once (change it under Admin → Users).")
        scheduled = ensure_all_schedules()
        if scheduled:
            self.stdout.write(f"Schedules registered for: {', '.join(scheduled)}.")
        if opts["demo"]:
            call_command("seed_demo")

        env = dict(os.environ)
        python = sys.executable
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        web_cmd = [
            python, "-m", "gunicorn", "dashboard.wsgi:application",
            "--bind", f"{opts['host']}:{opts['port']}",
            "--workers", str(opts["web_workers"]),
            "--access-logfile", "-", "--graceful-timeout", "10",
        ]  # fmt: skip
        children: list[tuple[str, subprocess.Popen]] = []
        # The children run in sessions of their own, so only this process hears a stop request.
        # SIGTERM (kill, systemd, docker stop) and SIGHUP must stop them like Ctrl-C does, and
        # SIGINT too when a shell started us in the background (it then ignores SIGINT).
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            children.append(("web", subprocess.Popen(web_cmd, env=env, start_new_session=True)))
            if not opts["no_worker"]:
                worker_cmd = [python, manage, "qcluster"]
                children.append(("worker", subprocess.Popen(worker_cmd, env=env, start_new_session=True)))
            self.stdout.write(
                self.style.SUCCESS(f"Watchpost is running at http://{opts['host']}:{opts['port']}/  (Ctrl-C stops it)")
            )
            while True:
                for name, proc in children:
                    code = proc.poll()
                    if code is not None:
                        self.stderr.write(f"The {name} process exited with code {code}; stopping.")
                        return
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self._stop(children)

    def _stop(self, children):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second request must not cut the shutdown short

        claim = None
        if any(name == "worker" and proc.poll() is None for name, proc in children):
            from monitoring.services.sampler import ShutdownClaim

            claim = ShutdownClaim().start()  # the GPU sampler's task would otherwise run on for minutes
        # Only the leaders get SIGTERM: gunicorn's master and django-q2's cluster each stop
        # their own children in order. Signalling the whole group killed django-q2's sentinel
        # and workers outright (they keep SIGTERM's default action), which could leave the
        # cluster waiting on a lock a dead process held, until the SIGKILL below.
        for _, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {name} process did not stop in time; killing it.")
            # Whatever is left of the group (all of it after a timeout) goes with SIGKILL.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if claim is not None:
            claim.release()
        self.stdout.write("Stopped.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt
