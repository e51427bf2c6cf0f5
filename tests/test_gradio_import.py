"""Gradio imports without regenerating its type stubs, and still builds components and apps."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from interviewer.ui.gradio_import import _no_stubs


def test_stub_writer_is_skipped_in_a_fresh_interpreter():
    code = textwrap.dedent("""
        from interviewer.ui.gradio_import import import_gradio
        gr = import_gradio()
        import gradio.component_meta as meta
        print(meta.create_or_modify_pyi.__name__)
        with gr.Blocks() as demo:
            box = gr.Textbox(label="answer")
            gr.Button("send").click(lambda s: s[::-1], box, box)
        print(type(box).__name__, len(demo.config["components"]) >= 2)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [_no_stubs.__name__, "Textbox", "True"]


def test_gradio_already_imported_is_left_alone():
    code = textwrap.dedent("""
        import gradio, sys
        from interviewer.ui.gradio_import import import_gradio, _SkipStubs
        assert import_gradio() is gradio
        assert not any(isinstance(f, _SkipStubs) for f in sys.meta_path)
        import gradio.component_meta as meta
        print(meta.create_or_modify_pyi.__name__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "create_or_modify_pyi"
