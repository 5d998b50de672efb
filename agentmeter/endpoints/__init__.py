"""The client's endpoint groups: events, queries and meters, projects and billing."""
