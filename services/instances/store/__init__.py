"""Instances' SQL, one module per thing stored.

``definitions`` (app-event types, data sources), ``connections`` (the connections this
service knows of), ``deployments`` (deployments and their steps), ``subscriptions``
(webhook subscriptions and their deliveries), ``data_source_instances``. Each function
takes the connection first, returns models (never ``asyncpg.Record`` s) and leaves
transactions to its caller. Callers import the module they need.
"""
