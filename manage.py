#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remotebank.settings")
    # A batch worker's thread pools are sized when numpy/OpenCV load: bound them first.
    from remotebank.priorities import prepare_environment

    prepare_environment(sys.argv)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
