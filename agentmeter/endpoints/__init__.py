"""The client's endpoint groups, one object per concern: events, queries, meters, admin.

Each takes the :class:`~agentmeter.endpoints.connection.Connection` it sends through.
"""
