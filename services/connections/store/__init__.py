"""Connections' SQL, one module per thing stored.

``integrations`` (the apps a workspace connects to, their sealed client secrets),
``sessions`` (connect sessions and their OAuth state), ``connections`` (connections, their
sealed credentials and refresh schedule, and the claims of due refreshes and checks). Each
function takes the connection first, returns models (never ``asyncpg.Record`` s) and leaves
transactions to its caller. Callers import the module they need.
"""
