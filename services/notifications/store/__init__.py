"""Notifications' SQL: endpoints, deliveries and attempts (every query by workspace)."""
