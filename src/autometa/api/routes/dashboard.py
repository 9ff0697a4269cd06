"""The dashboard page at `/`, and the create form's validation as the user types.

Validation runs the very models the relayer uses (`WorkflowCreateBody`, the supported tokens,
times against chain time), so the form can never accept what `prepare` would refuse."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import FileResponse
from pydantic import ValidationError

from autometa.api.dashboard import INDEX_HTML
from autometa.api.dashboard.schemas import FieldError, TriggerKindOut, ValidationOut
from autometa.api.deps import ChainDep, SettingsDep
from autometa.api.schemas import ErrorOut, WorkflowCreateBody
from autometa.domain.triggers import creatable_kinds
from autometa.domain.workflow import unsupported_token

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The single-page dashboard (ES modules under /static)."""
    return FileResponse(INDEX_HTML, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/api/dashboard/trigger-kinds", response_model=list[TriggerKindOut])
async def trigger_kinds() -> list[TriggerKindOut]:
    """The trigger kinds the create form offers: the registry's creatable ones, default first."""
    return [
        TriggerKindOut(
            name=k.name, code=k.code, label=k.label, fields=[f for f in k.data_model.model_fields if f != "kind_"]
        )
        for k in creatable_kinds()
    ]


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def _field(loc: tuple[int | str, ...]) -> str:
    """`("trigger_data", "interval", "interval")` → `trigger_data.interval`: drop the union's tag
    (the second place under trigger_data/action_data), keep a field named like a tag."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("trigger_data", "action_data"):
        del parts[1]
    return ".".join(p for p in parts if not p.startswith("function-")) or "body"


@router.post(
    "/api/dashboard/validate",
    response_model=ValidationOut,
    responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def validate(
    body: Annotated[dict[str, Any], Body(description="a create body, possibly incomplete")],
    settings: SettingsDep,
    chain: ChainDep,
) -> ValidationOut:
    """Every problem of a create body, each on its field; `ok` when `prepare` would accept it
    (escrow aside). Answers 200 either way: an invalid draft is the normal case here."""
    try:
        parsed = WorkflowCreateBody.model_validate(body)
    except ValidationError as exc:
        errors = [FieldError(field=_field(e["loc"]), message=_message(e["msg"])) for e in exc.errors()]
        return ValidationOut(ok=False, errors=errors)
    spec = parsed.spec()
    problems: list[FieldError] = []
    unsupported = unsupported_token(spec, settings.SUPPORTED_ASSETS)
    if unsupported:
        problems.append(FieldError(field="trigger_data.token", message=unsupported))
    try:
        _, now = await chain.head()
    except Exception:
        now = None  # chain down: the relayer checks times when it prepares
    if now is not None:
        try:
            spec.check_times(now)
        except ValueError as exc:
            text = str(exc)
            field = "trigger_data.at" if text.startswith("trigger_data.at") else "trigger_data"
            problems.append(FieldError(field=field, message=text.removeprefix("trigger_data.at ")))
    return ValidationOut(ok=not problems, errors=problems, spec=spec.resolved().model_dump(mode="json"))
