#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import execute_from_command_line

    django.setup()
    from config import runtime

    runtime.prepare()  # folders, and the embedded Redis unless runall (its owner) said no
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
