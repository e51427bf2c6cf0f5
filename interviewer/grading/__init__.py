"""Grading: reading an answer as data (``answer_text``), the grade contract (``contract``), the offline rubric
grader (``offline``), the LLM grader (``llm``) and the registry that names them (``registry``)."""
