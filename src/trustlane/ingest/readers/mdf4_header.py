"""Metadata and consent records carried in an MDF4 header comment.

The comment may be plain text (it becomes ``metadata["comment"]``) or the XML form
``<HDcomment><TX>text</TX><common_properties><e name="KEY">VALUE</e>...</common_properties></HDcomment>``:
``TX`` becomes ``metadata["comment"]``; each ``<e name="KEY">`` becomes ``metadata[KEY]`` (``<tree name="T">``
nests keys as ``T.KEY``), except ``trustlane.consent``, whose value is a JSON list of consent records (see
:mod:`.consent`). XML with a DTD or entity declarations is refused.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from trustlane.errors import MalformedInput
from trustlane.ingest.model import ConsentRecord
from trustlane.ingest.readers.consent import CONSENT_KEY, parse_consents

_DECLARATIONS = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_HINT = 'write the header comment as <HDcomment><TX>...</TX><common_properties><e name="...">...</e>...'


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _properties(element: ET.Element, prefix: str, into: dict[str, str]) -> None:
    for child in element:
        kind, name = _local(child.tag), child.get("name", "")
        if kind == "e" and name:
            into[prefix + name] = (child.text or "").strip()
        elif kind == "tree" and name:
            _properties(child, f"{prefix}{name}.", into)


def parse_header_comment(source: Path, comment: str) -> tuple[dict[str, str], tuple[ConsentRecord, ...]]:
    """(metadata, consent records) from the header comment of the MDF file ``source``."""
    text = comment.strip()
    if not text:
        return {}, ()
    if not text.startswith("<"):
        return {"comment": text}, ()
    if _DECLARATIONS.search(text):
        raise MalformedInput(
            f"{source}: the MDF header comment declares a DTD or entities, which are refused", hint=_HINT
        )
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs and entities are refused above
    except ET.ParseError as exc:
        raise MalformedInput(f"{source}: the MDF header comment is not well-formed XML ({exc})", hint=_HINT) from None
    metadata: dict[str, str] = {}
    for child in root:
        kind = _local(child.tag)
        if kind == "TX" and (child.text or "").strip():
            metadata["comment"] = (child.text or "").strip()
        elif kind == "common_properties":
            _properties(child, "", metadata)
    consents: tuple[ConsentRecord, ...] = ()
    if CONSENT_KEY in metadata:
        carrier = f'MDF header comment <e name="{CONSENT_KEY}">'
        consents = parse_consents(metadata.pop(CONSENT_KEY), source=source, carrier=carrier)
    return metadata, consents
