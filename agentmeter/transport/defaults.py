"""The embedded ledger's default project, apart from ``local.py`` (which loads
SQLAlchemy), so the CLI's driver-only reports can name it."""

DEFAULT_PROJECT_ID = "default"
