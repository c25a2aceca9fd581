"""Safe XML: every reply is parsed here, through defusedxml, with a size cap.

Strategy: replies are small documents from a service we do not control, so the parser forbids
DTDs, entities and external references outright (an entity bomb or an external entity is a
``ResponseError``, never an expansion), and tag names are compared without case or namespace,
because production and staging disagreed on case (protocol.md, create_session).
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ._errors import ResponseError

__all__ = [
    "MAX_XML_BYTES",
    "error_fields",
    "first_by_name",
    "iter_named",
    "local_name",
    "parse_xml",
]

MAX_XML_BYTES = 1024 * 1024  # API replies are a few hundred bytes; a megabyte is not a reply
_BOM = b"\xef\xbb\xbf"


def _trim(body: bytes) -> bytes:
    # A BOM and leading whitespace occur in the wild; expat rejects whitespace before "<?xml".
    while True:
        stripped = body.lstrip()
        if stripped.startswith(_BOM):
            stripped = stripped[len(_BOM) :]
        if stripped == body:
            return body
        body = stripped


def looks_like_xml(body: bytes) -> bool:
    """Return whether the body starts, after a BOM and whitespace, with ``<``."""
    return _trim(body[:4096]).startswith(b"<")


def parse_xml(body: bytes, *, status: int | None = None) -> Element:
    """Parse a reply body; raise ``ResponseError`` for anything that is not safe, small XML."""
    if len(body) > MAX_XML_BYTES:
        raise ResponseError(
            f"reply is {len(body)} bytes, over the {MAX_XML_BYTES}-byte cap", status=status
        )
    try:
        root: Element = fromstring(
            _trim(body), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except DefusedXmlException as exc:
        raise ResponseError(
            f"reply XML refused ({type(exc).__name__})", status=status, body=body
        ) from None
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: encoding="bogus"
        raise ResponseError(
            f"reply is not well-formed XML: {exc}", status=status, body=body
        ) from None


def local_name(element: Element) -> str:
    """Return the tag without namespace, lowercased."""
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return (tag.rpartition("}")[2] if "}" in tag else tag).lower()


def iter_named(root: Element, name: str) -> Iterator[Element]:
    """Yield every element (root included) whose local name is ``name``, any case."""
    for element in root.iter():
        if local_name(element) == name:
            yield element


def first_by_name(root: Element) -> dict[str, Element]:
    """Map each local name to its first element (document order, root included), in one walk."""
    index: dict[str, Element] = {}
    for element in root.iter():
        index.setdefault(local_name(element), element)
    return index


def error_fields(
    root: Element, index: dict[str, Element] | None = None
) -> tuple[str | None, str | None] | None:
    """Return (code, message) if the document is an ``<Errors>``/``<error>`` reply, else None.

    The message is the ``message`` attribute of the first element child of ``<error>``
    (protocol.md, Errors); a bare ``<error code="100"></error>`` has none. ``index`` is
    ``first_by_name(root)``, if the caller has it already.
    """
    error = (first_by_name(root) if index is None else index).get("error")
    if error is None:
        if local_name(root) == "errors":
            return None, None
        return None
    code = error.get("code")
    message = None
    for child in error:  # element children only: whitespace text is not a child
        message = child.get("message")
        break
    return code, message
