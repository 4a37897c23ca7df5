"""What starts flow runs besides the API: app events, data-record changes and schedules.

Each trigger creates runs through :func:`services.flows.runs.start.start_run` only:
:mod:`.app_events` and :mod:`.data_records` are durable event consumers, :mod:`.schedules`
a ticker shared by every replica; :mod:`.workers` lists them as the service's background
tasks. (Kept free of imports, so ``services.flows.settings`` can import :mod:`.settings`.)
"""
