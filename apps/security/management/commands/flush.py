"""`flush`, connected as the owner role when DATABASE_OWNER_URL is set (remotebank.db_roles):
it empties tables with TRUNCATE, which the application role may not do. Django's transactional
tests flush after each test through this command."""

from typing import Any

from django.core.management.commands import flush

from remotebank.db_roles import as_owner


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        with as_owner(options["database"]):
            super().handle(**options)
