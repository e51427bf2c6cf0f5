"""Search over the notes: the e5 encoder (``embedding``, ``onnx_graph``), the Chroma index (``index``), the
lexical half (``lexical``) and hybrid retrieval with cited passages (``retrieval``)."""
