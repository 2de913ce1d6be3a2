"""No silent no-ops: unknown query parameters and form fields are refused, by name.

FastAPI ignores query parameters a route does not declare, so ``?face=false`` would be accepted and
do nothing. ``reject_unknown_query`` runs before every route (an app-wide dependency) and answers 400
``unknown_parameter`` naming each parameter the route does not take. Names other redaction APIs use
(``blurringKind``, ``blacken``, ``callbackUrl``, ``categories[]``, ...) get the Veil equivalent in the
message; ``SEED_EQUIVALENTS`` is that table, and the README prints it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from veil.errors import VeilError

__all__ = [
    "SEED_EQUIVALENTS",
    "UnknownParameter",
    "describe_unknown",
    "equivalent_of",
    "reject_unknown_query",
]


class UnknownParameter(VeilError):
    """A query parameter or form field the endpoint does not take (400)."""

    code = "unknown_parameter"


_CATEGORIES = 'spec `"categories": {"face": {}, "license_plate": {}}` (list only the ones to mask)'
_FACE = 'spec `"categories"`: list `face` to mask faces, or leave it out (`{"license_plate": {}}`) not to'
_PLATE = 'spec `"categories"`: list `license_plate` to mask plates, or leave it out not to'
_METHOD = 'spec `"method"`: `blur`, `pixelate`, `black` or `box` (per category: `categories.face.method`)'
_WEBHOOK = 'spec `"webhook": {"url": "https://..."}`'
_AUDIO = (
    'spec `"audio": {"remove": true}` to drop the sound, or '
    '`"audio": {"mute": [{"start": 12.5, "end": 14}]}` to silence spans (seconds)'
)
_THRESHOLD = 'spec `"categories": {"face": {"threshold": 0.3}}` (per category)'

SEED_EQUIVALENTS: dict[str, str] = {
    "face": _FACE,
    "faces": _FACE,
    "license_plate": _PLATE,
    "licenseplate": _PLATE,
    "license-plate": _PLATE,
    "plate": _PLATE,
    "plates": _PLATE,
    "categories": _CATEGORIES,
    "categories[]": _CATEGORIES,
    "objects": _CATEGORIES,
    "method": _METHOD,
    "blurringkind": _METHOD + " (Azure `HighBlur`/`MediumBlur`/`LowBlur` are `blur`, `Black` is "
    "`black`, `BoundingBox` is `box`)",
    "blacken": 'spec `"method": "black"`',
    "blur": 'spec `"method": "blur"` (the default)',
    "pixelate": 'spec `"method": "pixelate"`',
    "anonymization_method": _METHOD,
    "anonymizationmethod": _METHOD,
    "replacewith": _METHOD,
    "callbackurl": _WEBHOOK,
    "callback_url": _WEBHOOK,
    "callback": _WEBHOOK,
    "webhookurl": _WEBHOOK,
    "webhook_url": _WEBHOOK,
    "webhook": _WEBHOOK,
    "threshold": _THRESHOLD,
    "thresh": _THRESHOLD,
    "confidence": _THRESHOLD,
    "mask_scale": 'spec `"mask_scale": 1.3`',
    "maskscale": 'spec `"mask_scale": 1.3`',
    "mask_margin": 'spec `"mask_margin": 8` (pixels), or per category `categories.face.mask_margin`',
    "maskmargin": 'spec `"mask_margin": 8` (pixels), or per category `categories.face.mask_margin`',
    "mode": 'spec `"mode": "redact"` or `"detect"`',
    "format": 'spec `"output": {"format": "mp4"}`',
    "output_format": 'spec `"output": {"format": "mp4"}`',
    "keep_metadata": 'spec `"output": {"keep_metadata": true}`',
    "keepmetadata": 'spec `"output": {"keep_metadata": true}`',
    "audio": _AUDIO,
    "mute": _AUDIO,
    "mute_audio": _AUDIO,
    "muteaudio": _AUDIO,
    "remove_audio": _AUDIO,
    "removeaudio": _AUDIO,
    "image": "the multipart field `file`",
    "video": "the multipart field `file`",
    "media": "the multipart field `file`",
    "upload": "the multipart field `file`",
    "person": "none: Veil masks faces (`face`), not whole people, unless a site adds its own COCO model "
    "as a `person` category (`veil models add --category person --classes person`)",
    "vehicle": "none: Veil masks licence plates (`license_plate`), not whole vehicles, unless a site adds "
    "its own COCO model as a `vehicle` category "
    "(`veil models add --category vehicle --classes car,bus,truck,motorcycle,bicycle`)",
}
"""Names other redaction APIs take (query, form or JSON), lower-cased, and what to send Veil instead."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\[\]-]")


def equivalent_of(name: str) -> str | None:
    """The Veil equivalent of a seed-style parameter name, or None when it is not one we know."""
    return SEED_EQUIVALENTS.get(name.strip().lower())


def _shown(name: str) -> str:
    """The name as it may appear in a message: short, printable, nothing else the client sent."""
    return "`" + (_SAFE_NAME.sub("?", name)[:40] or "?") + "`"


def describe_unknown(names: list[str], *, what: str, accepted: list[str]) -> str:
    """``unknown query parameter `face` (Veil: ...); this endpoint takes `wait`"``."""
    parts = []
    for name in names:
        hint = equivalent_of(name)
        parts.append(_shown(name) + (f" (Veil: {hint})" if hint else ""))
    plural = "s" if len(names) > 1 else ""
    takes = ", ".join(f"`{a}`" for a in accepted) if accepted else "none"
    return f"unknown {what}{plural} {'; '.join(parts)}; this endpoint takes: {takes}"


_ROUTE_PARAMS: dict[int, frozenset[str]] = {}


def _walk_query(dependant: Dependant, into: set[str]) -> None:
    into.update(param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        _walk_query(sub, into)


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _ROUTE_PARAMS.get(id(route))
    if names is None:
        found: set[str] = set()
        _walk_query(route.dependant, found)
        names = frozenset(found)
        _ROUTE_PARAMS[id(route)] = names
    return names


def reject_unknown_query(request: Request) -> None:
    """App-wide dependency: 400 ``unknown_parameter`` for any query parameter the route does not declare."""
    route: Any = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise UnknownParameter(describe_unknown(unknown[:10], what="query parameter", accepted=sorted(known)))
