"""Clients: request building and reply matching shared by the sync client (and others)."""
