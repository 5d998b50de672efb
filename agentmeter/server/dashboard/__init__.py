"""The web dashboard that ``agentmeter serve`` shows at ``/`` (docs/dashboard.md)."""
