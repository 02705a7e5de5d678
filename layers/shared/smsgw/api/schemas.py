"""Generate the published contracts from the models: ``python -m smsgw.api.schemas``.

Writes ``events/schemas/<type>.json`` (one JSON Schema per event type, the whole event as a
rule target receives it) and ``docs/openapi.yaml`` (the public API). Tests fail when the
files in the repository differ from what this generates.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from smsgw.api.events import EVENT_TYPES

REPO = Path(__file__).resolve().parents[4]
SCHEMAS = REPO / "events" / "schemas"
OPENAPI = REPO / "docs" / "openapi.yaml"


def schema_name(detail_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", detail_type.lower()).strip("_")


def event_schema(detail_type: str) -> dict[str, Any]:
    """The JSON Schema of a whole event of ``detail_type`` (EventBridge's envelope around
    the gateway's ``detail``)."""
    models: tuple[type[BaseModel], ...] = EVENT_TYPES[detail_type]
    defs: dict[str, Any] = {}
    variants = []
    for model in models:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        variants.append({"$ref": f"#/$defs/{model.__name__}"})
    detail: dict[str, Any] = variants[0] if len(variants) == 1 else {"oneOf": variants}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://smsgw.example/events/{schema_name(detail_type)}.json",
        "title": detail_type,
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": "smsgw"},
            "detail-type": {"const": detail_type},
            "detail": detail,
        },
        "$defs": defs,
    }


def rendered_event_schemas() -> dict[str, str]:
    return {
        f"{schema_name(t)}.json": json.dumps(event_schema(t), ensure_ascii=False, indent=2) + "\n"
        for t in EVENT_TYPES
    }


def rendered_openapi() -> str:
    from smsgw.api.openapi import openapi_yaml  # noqa: PLC0415 - only for the generator

    return openapi_yaml()


def main() -> int:
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for name, text in rendered_event_schemas().items():
        (SCHEMAS / name).write_text(text, encoding="utf-8")
    OPENAPI.write_text(rendered_openapi(), encoding="utf-8")
    print(f"wrote {len(EVENT_TYPES)} event schemas and {OPENAPI.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
