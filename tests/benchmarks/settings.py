"""Settings for `make bench`: the project's settings on a separate benchmark database.

The benchmark database is never the dev one: WATCHPOST_DB_NAME defaults to
watchpost_bench here (the embedded server creates it). DATABASE_URL, when set,
is honoured as is; the dataset builder refuses to wipe a database it did not
build (see dataset.py).
"""

import os

os.environ.setdefault("WATCHPOST_DB_NAME", "watchpost_bench")
# Tasks run inline: the benchmarks call services directly and must not leave work in a broker.
os.environ.setdefault("WATCHPOST_TASKS_SYNC", "1")

from dashboard.settings import *  # noqa: E402,F403
from dashboard.settings import ALLOWED_HOSTS, STORAGES  # noqa: E402

# Pages are requested through the test Client without collectstatic having run.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# The rule engine and anything else that mails must not reach a real server.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
