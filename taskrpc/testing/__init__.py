"""Helpers for testing taskrpc apps; the pytest plugin lives in :mod:`taskrpc.testing.plugin`."""
