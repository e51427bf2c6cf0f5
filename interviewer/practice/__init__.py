"""Practice that remembers: every graded point of every session in a per-user ledger (``ledger``), a spaced-
repetition memory state per question and per key point (``schedule``, FSRS), and what to practise next and how
it is going (``review``)."""
