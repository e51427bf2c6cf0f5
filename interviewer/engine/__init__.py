"""The interview engine, in the order a turn flows: commands parsed (``commands``), typed state (``state``),
the pure policy that picks the next move (``policy``), the moves and hints themselves (``moves``), the reverse
stage (``reverse``), model wording ahead of time (``prefetch``), graph nodes (``nodes``), the session API
(``session``) and the SQLite store (``store``)."""
