"""The address of a note section: ``file.md § Heading › Subheading``. Made, parsed and checked here only."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

SEP = " § "
SUB = " › "


class Citation(BaseModel):
    """A note section a question, grade or hint points to."""

    source: str
    heading: str = ""

    @classmethod
    def parse(cls, address: str) -> Citation:
        source, _, heading = str(address).partition(SEP)
        return cls(source=source.strip(), heading=heading.strip())

    from_note = parse  # a rubric point's ``note`` is an address

    @property
    def address(self) -> str:
        return address(self.source, self.heading)


def address(source: str, heading: str = "") -> str:
    """``source § heading`` (just ``source`` for a note without headings)."""
    return f"{source}{SEP}{heading}" if heading else str(source)


def address_of(cite: dict | Citation) -> str:
    """The address of a citation given as a model or as its dict form."""
    if isinstance(cite, Citation):
        return cite.address
    return address(str(cite.get("source", "")), str(cite.get("heading", "") or ""))


def exists(cite: dict | Citation, addresses: set[str]) -> bool:
    """The section is in the index, as itself or as the parent of an indexed subsection."""
    where = address_of(cite)
    return where in addresses or any(a.startswith(where + SUB) for a in addresses)


def all_exist(cites: Iterable[dict | Citation], addresses: set[str]) -> bool:
    """At least one citation, and every one names a section that exists."""
    cites = list(cites)
    return bool(cites) and all(exists(c, addresses) for c in cites)
