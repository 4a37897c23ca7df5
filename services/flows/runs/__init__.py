"""Flow runs: starting them, executing them durably, steering them, keeping their logs."""
