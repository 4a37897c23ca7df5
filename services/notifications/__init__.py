"""The notifications service: signed, durable webhooks to the workspace's backend."""
