"""``/v1/links/{job_id}``: download through a signed link, without an API key."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from veil.api.deps import ServicesDep
from veil.api.download import file_responses, preview_response, result_response, source_response
from veil.api.job_access import audit_job
from veil.api.signed_links import verify_link
from veil.errors import JobNotFound
from veil.jobs import store

__all__ = ["router"]

router = APIRouter(prefix="/v1/links", tags=["links"])


@router.head("/{job_id}", include_in_schema=False)
@router.get(
    "/{job_id}",
    summary="Download through a signed link",
    response_class=Response,
    responses=file_responses("The redacted file.", 400, 403, 404, 409, 410, 416),
)
def download_link(
    request: Request,
    services: ServicesDep,
    job_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$", description="Job id.")],
    expires: Annotated[int, Query(ge=0, le=2**40, description="Expiry, Unix seconds (from the link).")],
    sig: Annotated[str, Query(max_length=128, description="Signature (from the link).")],
    file: Annotated[
        Literal["result", "source", "preview"],
        Query(description="Which file the link is for (from the link)."),
    ] = "result",
    range_header: Annotated[
        str | None, Header(alias="Range", max_length=200, description="`bytes=a-b`")
    ] = None,
) -> Response:
    """No API key needed: the signature proves the link was made by `POST /v1/jobs/{id}/links`.
    A changed or expired link gets 403."""
    now = services.clock.time()
    verify_link(services.server_secret, job_id=job_id, expires=expires, sig=sig, now=now, file=file)
    with services.db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
    if row is None:
        raise JobNotFound("no such job")
    head = request.method == "HEAD"
    serve = {"source": source_response, "preview": preview_response}.get(file, result_response)
    response = serve(services.storage, row, range_header=range_header, head=head)
    if response.status_code == 200 and not head:
        action = "link.download" if file == "result" else "link.source"
        audit_job(services, request, actor="link", action=action, row=row)
    return response
