"""Test doubles shared by the tests and the bench: a stub chat model and a fault-injecting OpenAI-compatible server."""
