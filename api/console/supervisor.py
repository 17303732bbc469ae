"""The supervisor's screens: the live wallboard (more in this module as they come)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.session import page
from api.console.web import render
from domain.access import Action
from domain.base import Actor
from infra.runtime import Hotline
from projections import wallboard

router = APIRouter(include_in_schema=False)

# A queue is in alarm when one of these is crossed (the wallboard's red tiles).
WAITING_ALARM = 5  # contacts waiting
AGENT_STATES = ("available", "reserved", "on_contact", "wrap_up", "not_ready")


def board_with_alarms(hotline: Hotline) -> dict[str, object]:
    with hotline.read_store.engine.connect() as conn:
        board = wallboard.wallboard(conn, hotline.clock.now())
    for q in board["queues"]:
        target = q["sl_target"]
        alarms = []
        if q["service_level_today"] is not None and target["percent"] and q["service_level_today"] * 100 < target["percent"]:
            alarms.append("service_level")
        if target["seconds"] and q["longest_wait_seconds"] > target["seconds"]:
            alarms.append("longest_wait")
        if q["waiting"] >= WAITING_ALARM:
            alarms.append("waiting")
        q["alarms"] = alarms
    return board


@router.get("/console/wallboard", response_class=HTMLResponse)
def wallboard_page(request: Request, actor: Actor = page(Action.CONTACT_CENTER_READ)) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    return render(request, "supervisor/wallboard.html", actor, board=board_with_alarms(hotline), states=AGENT_STATES)


@router.get("/console/wallboard/board", response_class=HTMLResponse)
def wallboard_board(request: Request, actor: Actor = page(Action.CONTACT_CENTER_READ)) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    return render(request, "supervisor/_board.html", actor, board=board_with_alarms(hotline), states=AGENT_STATES)
