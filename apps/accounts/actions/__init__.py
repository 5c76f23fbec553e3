"""The accounts app's writes, one module per concept: customers' identity, API clients'
signed requests, staff login (lockout) and the TOTP second factor. Presence is routing's
(apps.calls.actions.presence)."""
