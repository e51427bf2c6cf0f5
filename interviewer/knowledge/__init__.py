"""The knowledge base: the question bank, plans, fact registry and topics (``bank``, ``topics``), the Markdown
notes cut into citable sections (``notes``), note addresses (``citation``) and the notes audit (``audit``)."""
