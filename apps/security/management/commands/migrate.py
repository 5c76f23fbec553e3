"""`migrate`, connected as the owner role when DATABASE_OWNER_URL is set (remotebank.db_roles):
the application role may not create or alter tables."""

from typing import Any

from django.core.management.commands import migrate

from remotebank.db_roles import as_owner


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with as_owner(options["database"]):
            super().handle(*args, **options)
