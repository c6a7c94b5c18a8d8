"""Settings for `make bench`: the project's settings on a separate benchmark database.

The benchmark database is never the dev one: the embedded server's database is
BENCH_DB_NAME (default watchpost_bench; the server creates it), whatever
WATCHPOST_DB_NAME says. DATABASE_URL, when set, is honoured as is; the dataset
builder refuses to wipe a database it did not build (see dataset.py).
"""

import os

os.environ["WATCHPOST_DB_NAME"] = os.environ.get("BENCH_DB_NAME") or "watchpost_bench"
# Tasks run inline: the benchmarks call services directly and must not leave work in a broker.
os.environ.setdefault("WATCHPOST_TASKS_SYNC", "1")

from dashboard.settings import *  # noqa: E402,F403
from dashboard.settings import ALLOWED_HOSTS, STORAGES  # noqa: E402

# Pages are requested through the test Client without collectstatic having run.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# The rule engine and anything else that mails must not reach a real server.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
