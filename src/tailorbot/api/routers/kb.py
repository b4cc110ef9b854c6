"""``/v1/kb/...``: the live knowledge base, changed without a restart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tailorbot.api.deps import KBDep, KBReloadDep
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse

router = APIRouter(tags=["kb"])

Kind = Annotated[
    str,
    Path(pattern="^(articles|templates)$", description="articles or templates"),
]
RecordId = Annotated[
    str,
    Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$"),
]


@router.get(
    "/v1/kb", summary="The live KB: version and record ids", responses=error_responses(401, 403)
)
async def get_kb(request: Request, kb: KBDep) -> Response:
    """The version in force and the ids of its articles and templates."""
    version, loaded = await off_loop(request, kb.load)
    return OrjsonResponse(
        {
            "version": version,
            "brand": loaded.manifest.brand.name if loaded.manifest.brand else None,
            "articles": [a.id for a in loaded.articles],
            "templates": [t.id for t in loaded.templates],
        }
    )


@router.get(
    "/v1/kb/{kind}/{record_id}",
    summary="Read an article or a template",
    responses=error_responses(401, 403, 404),
)
async def get_record(request: Request, kind: Kind, record_id: RecordId, kb: KBDep) -> Response:
    return OrjsonResponse(await off_loop(request, kb.get, kind.removesuffix("s"), record_id))


@router.put(
    "/v1/kb/{kind}/{record_id}",
    summary="Create or replace an article or a template",
    responses=error_responses(400, 401, 403, 404, 413, 422),
)
async def put_record(
    request: Request,
    kind: Kind,
    record_id: RecordId,
    body: dict[str, Any],
    kb: KBDep,
    reload: KBReloadDep,
) -> Response:
    """Validated like `tailorbot kb check` against the whole KB, and for a template that
    still offers a fixed `control_variant` (a 422 lists each `field` and `reason`, and
    nothing changes); then published as a new KB version that this server process serves at
    once (its event door included) and every other one within `kb_poll_s` seconds (with
    `kb_poll_s` 0: at its next start)."""
    version = await off_loop(request, kb.put, kind.removesuffix("s"), record_id, body)
    await off_loop(request, reload)
    return OrjsonResponse({"id": record_id, "version": version})


@router.delete(
    "/v1/kb/{kind}/{record_id}",
    summary="Delete an article or a template",
    responses=error_responses(401, 403, 404, 422),
)
async def delete_record(
    request: Request, kind: Kind, record_id: RecordId, kb: KBDep, reload: KBReloadDep
) -> Response:
    """404 when there is no such record; 422 when the KB would break (e.g. a template still
    names the article, or no template would offer the fixed `control_variant`)."""
    version = await off_loop(request, kb.delete, kind.removesuffix("s"), record_id)
    await off_loop(request, reload)
    return OrjsonResponse({"id": record_id, "version": version})
