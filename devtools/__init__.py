"""Development tools that do not ship in the wheel: ``interviewer eval`` (``evaluation``), scripted candidates
(``candidates``), ``interviewer bench`` (``bench``) and the test doubles (``doubles``)."""
