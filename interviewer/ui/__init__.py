"""The browser UI: pure HTML rendering (``render``), event handlers over the engine facade (``handlers``),
the Gradio layout (``layout``), its style (``style``) and the Gradio import shim (``gradio_import``)."""
