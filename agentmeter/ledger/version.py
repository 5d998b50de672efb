"""The ledger schema's version: what :func:`~agentmeter.ledger.schema.migrate`
brings a database to, and what the SQL-only readers (``fast_reports.py``)
expect. Kept apart so that reading it imports no SQLAlchemy."""

SCHEMA_VERSION = 10
