"""Small helpers for declaring seed columns: a Python default (forms, ORM) plus the
same default in the database (rows inserted by COPY, psql or another service)."""

from __future__ import annotations

import os
import time
import uuid

from django.db.models import Func, UUIDField, Value
from django.db.models.functions import Now
from django.utils import timezone


def uuid7() -> uuid.UUID:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, then random bits.

    Time-ordered keys keep B-tree inserts at the right edge of the index (the
    seed asks for UUID7 on job attempts, logs, transitions and export/backup jobs).
    Python 3.11 has no uuid.uuid7, hence this.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def now_defaults() -> dict:
    return {"default": timezone.now, "db_default": Now()}


def literal_defaults(value) -> dict:
    return {"default": value, "db_default": Value(value)}


class GenRandomUUID(Func):
    """gen_random_uuid(): built into PostgreSQL 13+, used as the database-side default."""

    function = "gen_random_uuid"
    template = "gen_random_uuid()"
    output_field = UUIDField()
