"""AI mock interviewer for LLM inference optimization roles (Chinese first, offline by default)."""

__version__ = "0.1.0"
