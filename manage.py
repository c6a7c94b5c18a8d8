#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # One readable line instead of a traceback for configuration mistakes.
        sys.stderr.write(f"watchpost: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
