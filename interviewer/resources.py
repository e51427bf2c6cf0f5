"""Where the data that ships with the product lives: the knowledge base (``knowledge/``) and the prompts
(``prompts/``).

In a source checkout (or an editable install) they are the folders at the top of the repository; a built
wheel carries copies inside the package (``interviewer/_bundled/``, written by ``setup.py``'s build step),
read through :mod:`importlib.resources`. Nothing else in the product knows either location.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent  # the repository, in a source checkout or editable install


def data_dir(name: str) -> Path:
    """The shipped folder ``name`` (``knowledge`` or ``prompts``): the wheel's copy if there is one, else the checkout's."""
    bundled = Path(str(files("interviewer") / "_bundled" / name))
    if bundled.is_dir():
        return bundled
    return CHECKOUT / name


KNOWLEDGE_DIR = data_dir("knowledge")
PROMPTS_DIR = data_dir("prompts")
