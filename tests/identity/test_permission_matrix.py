"""The permission policy (domain/access.py) as the HTTP API enforces it, generated from
the OpenAPI document.

* Every operation names its rule (``x-permission``: ``open`` or an :class:`Action`).
* The role matrix: every operation whose rule is an action, called with a token for
  every role of :data:`domain.base.ROLES` (and with none): a role absent from
  ``RULES[action]`` gets 403, a present one never 401 or 403 (a scoped role may get 403
  on a resource outside its scope, counted apart, but never on a collection); no token
  is 401 unless the action is public (then never 401 or 403). An operation missing from
  the document's ``x-permission`` still gets its row, from the rule its route declares.
* The scope matrix on real resources: own versus other department, own versus other
  citizen, on a request dispatched to ``transport``, its work order and its citizen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.auth import rule_of
from domain.access import PUBLIC, RULES, Action, Scope
from domain.base import ROLES, SYSTEM
from domain.events import name_of
from domain.identity import commands as ic
from infra.runtime import Hotline
from tests.auth import bearer
from tests.conftest import START

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
DUMMY_ID = "00000000-0000-4000-8000-000000000000"
DUMMY_REF = "000000000000"
ACTIONS = {a.value for a in Action}

AGENT_ID = "agent-matrix"
TRANSPORT = ["transport"]
ENVIRONMENT = ["environment"]
Json = dict[str, Any]


def register_body(phone: str, email: str | None = None, name: str = "Mario Rossi") -> Json:
    contact: Json = {"name": name, "phone": phone}
    if email:
        contact["email"] = email
    return {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Deep pothole in front of number 12",
        "contact": contact,
        "location": {"address": "Via Roma 12", "lat": 41.9, "lon": 12.5},
        "urgency": "urgent",
        "problem_code": "pothole",
    }


# ---------------------------------------------------------------------- fixtures
def auth(hotline: Hotline, sub: str, role: str, **kw: Any) -> dict[str, str]:
    return bearer(hotline.settings, sub, role, **kw)


def agent(hotline: Hotline) -> dict[str, str]:
    return auth(hotline, AGENT_ID, "agent")


def supervisor(hotline: Hotline) -> dict[str, str]:
    return auth(hotline, "sup-matrix", "supervisor")


def dept(hotline: Hotline, departments: list[str]) -> dict[str, str]:
    return auth(hotline, f"dept-{departments[0]}", "department", departments=departments)


def citizen(hotline: Hotline, citizen_id: str) -> dict[str, str]:
    return auth(hotline, f"citizen:{citizen_id}", "citizen", citizen=citizen_id)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json()


def new_request(client: TestClient, hotline: Hotline, phone: str = "+39 06 1234 5678", department: str | None = None, **kw: Any) -> Json:
    """A request registered by an agent and dispatched (to the problem code's department,
    ``transport``, unless ``department`` names another)."""
    reg = ok(client.post("/requests", json=register_body(phone, **kw), headers=agent(hotline)), 201)
    body = {"department_id": department} if department else {}
    dispatched = ok(client.post(f"/requests/{reg['reference']}/dispatch", json=body, headers=agent(hotline)))
    assert dispatched["status"] == "dispatched"
    detail = ok(client.get(f"/requests/{reg['reference']}", headers=supervisor(hotline)))
    assert detail["department_id"] == (department or "transport")
    return reg


def new_work_order(client: TestClient, hotline: Hotline, ref: str) -> str:
    ok(client.post(f"/requests/{ref}/accept", json={}, headers=dept(hotline, TRANSPORT)))
    order = ok(client.post(f"/requests/{ref}/work-order", json={}, headers=agent(hotline)), 201)
    order_id: str = order["id"]
    return order_id


# ---------------------------------------------------------------------- the document
@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    permission: str | None  # x-permission of the OpenAPI document
    public: bool | None  # x-public
    rule: str | None  # what the route itself declares (api/auth.py): an action value, "open", or None

    @property
    def action(self) -> Action | None:
        """The operation's action: the document's, else the route's own rule."""
        for value in (self.permission, self.rule):
            if value in ACTIONS:
                return Action(value)
        return None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def route_rules(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(method, path) -> the rule the route declares ("open", an action value) or None.

    Newer FastAPI keeps included routers as wrappers in ``app.routes``; its
    ``iter_route_contexts`` walks them (older versions list the routes themselves)."""
    iterate: Any = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    found: dict[tuple[str, str], str | None] = {}
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        declared, action = rule_of(route.dependant)
        rule = (action.value if action is not None else "open") if declared else None
        for method in route.methods:
            found[(method, route.path_format)] = rule
    return found


def operations(app: FastAPI) -> list[Operation]:
    rules = route_rules(app)
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                m = method.upper()
                found.append(Operation(m, path, op.get("x-permission"), op.get("x-public"), rules.get((m, path))))
    return found


def test_every_route_declares_a_rule(client: TestClient) -> None:
    """api/auth.py: every endpoint says allow(Action.X) or OPEN (independent of the document)."""
    ops = operations(client.app)  # type: ignore[arg-type]
    undeclared = [str(op) for op in ops if op.rule is None]
    assert not undeclared, f"{len(undeclared)} routes declare no rule: {undeclared}"
    unknown = [f"{op}: {op.rule}" for op in ops if op.rule != "open" and op.rule not in ACTIONS]
    assert not unknown


def test_every_operation_has_x_permission(client: TestClient) -> None:
    ops = operations(client.app)  # type: ignore[arg-type]
    assert len(ops) > 50
    missing = [str(op) for op in ops if op.permission is None]
    assert not missing, f"{len(missing)} of {len(ops)} operations have no x-permission in the OpenAPI document: {missing}"
    wrong = [f"{op}: {op.permission!r}" for op in ops if op.permission != "open" and op.permission not in ACTIONS]
    assert not wrong, f"x-permission is neither 'open' nor an Action: {wrong}"
    differs = [f"{op}: document {op.permission}, route {op.rule}" for op in ops if op.permission != op.rule]
    assert not differs, f"x-permission differs from the route's rule: {differs}"
    public = [
        f"{op}: x-public {op.public}"
        for op in ops
        if op.public is not (op.permission == "open" or (op.permission in ACTIONS and Action(op.permission) in PUBLIC))
    ]
    assert not public, f"x-public does not say whether the operation needs no sign-in: {public}"


# ---------------------------------------------------------------------- role matrix
@dataclass
class Matrix:
    operations: int = 0
    cells: int = 0
    unexpected_allows: list[str] = field(default_factory=list)
    unexpected_denies: list[str] = field(default_factory=list)
    scoped_denies: list[str] = field(default_factory=list)
    anonymous_wrong: list[str] = field(default_factory=list)
    open_refused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"permission matrix: {self.operations} operations x {len(ROLES)} roles = {self.cells} cells "
            f"(+{self.operations} without a token); unexpected allows {len(self.unexpected_allows)}, "
            f"unexpected denies {len(self.unexpected_denies)}, scoped 403s (dummy or out-of-scope resources) "
            f"{len(self.scoped_denies)}, wrong answers without a token {len(self.anonymous_wrong)}, "
            f"open operations refused {len(self.open_refused)}"
        )


def call(client: TestClient, op: Operation, path: str, headers: dict[str, str]) -> int:
    params = {"once": "true"} if path.startswith("/live/") else None  # server-sent events: one push, then the end
    if op.method == "GET":
        response = client.get(path, headers=headers, params=params)
    else:
        response = client.request(op.method, path, json={}, headers=headers, params=params)
    return response.status_code


def role_headers(hotline: Hotline, role: str, citizen_id: str) -> dict[str, str]:
    if role == "department":
        return dept(hotline, TRANSPORT)
    if role == "citizen":
        return citizen(hotline, citizen_id)
    if role == "agent":
        return agent(hotline)
    return auth(hotline, f"{role}-matrix", role)


def test_role_matrix(client: TestClient, hotline: Hotline) -> None:
    # Plausible existing resources: a request dispatched to transport with its work order,
    # its citizen, an enrolled staff member; dummy ids for the rest.
    reg = new_request(client, hotline)
    order_id = new_work_order(client, hotline, reg["reference"])
    hotline.bus.execute(ic.EnrollStaff(username="sup-existing", name="Sam", roles=["supervisor"]), SYSTEM)
    ids = {
        "ref": reg["reference"],
        "order_id": order_id,
        "citizen_id": reg["citizen_id"],
        "username": "sup-existing",
        "code": "pothole",
        "level": "departments",
        "entry_id": "no-such-entry",
        "jurisdiction": "default",
        "agent_id": AGENT_ID,
        "name": "no_such_report",
    }

    def fill(path: str) -> str:
        return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), DUMMY_ID if m.group(1).endswith("id") else DUMMY_REF), path)

    matrix = Matrix()
    headers = {role: role_headers(hotline, role, reg["citizen_id"]) for role in ROLES}
    for op in operations(client.app):  # type: ignore[arg-type]
        path = fill(op.path)
        action = op.action
        if action is None:
            if op.permission == "open" or op.rule == "open":
                status = call(client, op, path, {})
                if status in (401, 403):
                    matrix.open_refused.append(f"{op}: {status}")
            continue
        matrix.operations += 1
        rule = RULES[action]
        for role in ROLES:
            matrix.cells += 1
            status = call(client, op, path, headers[role])
            cell = f"{op} [{action.value}] as {role}: {status}"
            if role not in rule:
                if status != 403:
                    matrix.unexpected_allows.append(cell)
            elif status == 401 or (status == 403 and (rule[role] is Scope.ALL or "{" not in op.path)):
                # A scoped role is refused only on a resource outside its scope: a collection
                # (no path parameter) names none, so a 403 there is a refusal of the role.
                matrix.unexpected_denies.append(cell)
            elif status == 403:
                matrix.scoped_denies.append(f"{cell} (scope {rule[role].value})")
        status = call(client, op, path, {})
        if action in PUBLIC:
            if status in (401, 403):
                matrix.anonymous_wrong.append(f"{op} [{action.value}, public] without a token: {status}")
        elif status != 401:
            matrix.anonymous_wrong.append(f"{op} [{action.value}] without a token: {status}")

    print("\n" + matrix.summary())
    for cell in matrix.scoped_denies:
        print("  scoped 403:", cell)
    assert matrix.operations > 50 and matrix.cells == matrix.operations * len(ROLES)
    assert not matrix.unexpected_allows, f"{matrix.summary()}\nunexpected allows: {matrix.unexpected_allows}"
    assert not matrix.unexpected_denies, f"{matrix.summary()}\nunexpected denies: {matrix.unexpected_denies}"
    assert not matrix.anonymous_wrong, f"{matrix.summary()}\n{matrix.anonymous_wrong}"
    assert not matrix.open_refused, matrix.open_refused


# ---------------------------------------------------------------------- scope matrix
@dataclass(frozen=True)
class Scoped:
    """A request-scoped operation: ``{ref}``, ``{order_id}`` or ``{citizen_id}`` in the path."""

    method: str
    path: str
    body: Json | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


IN_THREE_DAYS = (START + timedelta(days=3)).isoformat()
SCOPED = [
    Scoped("GET", "/requests/{ref}"),
    Scoped("GET", "/requests/{ref}/sla"),
    Scoped("POST", "/requests/{ref}/accept", {}),
    Scoped("POST", "/requests/{ref}/return", {"reason": "not ours"}),
    Scoped("POST", "/requests/{ref}/reply", {"message": "Fixed, thank you"}),
    Scoped("POST", "/requests/{ref}/extension", {"requested_due_at": IN_THREE_DAYS, "reason": "asphalt plant closed"}),
    Scoped("POST", "/requests/{ref}/notes", {"text": "crew booked", "internal": True}),
    Scoped("POST", "/requests/{ref}/wait-for-citizen", {"reason": "a photo, please"}),
    Scoped("POST", "/requests/{ref}/citizen-responded", {"note": "photo sent"}),
    Scoped("POST", "/requests/{ref}/citizen-messages", {"text": "Here is the photo", "channel": "web"}),
    Scoped("POST", "/requests/{ref}/rating", {"score": 4}),
    Scoped("POST", "/requests/{ref}/reopen", {"reason": "still broken"}),
    Scoped("POST", "/work-orders/{order_id}/start", {"crew": "Crew 3"}),
    Scoped("POST", "/work-orders/{order_id}/complete", {"outcome": "Filled with asphalt"}),
    Scoped("GET", "/work-orders/{order_id}"),
    Scoped("GET", "/citizens/{citizen_id}"),
    Scoped("POST", "/citizens/{citizen_id}", {"language": "en"}),
]


def test_scope_matrix_own_versus_other(client: TestClient, hotline: Hotline) -> None:
    rules = route_rules(client.app)  # type: ignore[arg-type]
    other_citizen = new_request(client, hotline, phone="+39 347 765 4321", name="Anna Bianchi")["citizen_id"]
    wrong: list[str] = []
    checked = 0
    for n, op in enumerate(SCOPED):
        rule = rules.get((op.method, op.path))
        assert rule in ACTIONS, f"{op}: no action ({rule})"
        action = Action(rule)
        # A fresh case for each operation: what one does (return, reopen) cannot change the next.
        reg = new_request(client, hotline, phone=f"+39 06 555 {1000 + n}")
        ids = {"ref": reg["reference"], "citizen_id": reg["citizen_id"]}
        if "{order_id}" in op.path:
            ids["order_id"] = new_work_order(client, hotline, reg["reference"])
        path = op.path.format(**ids)

        sides: list[tuple[str, dict[str, str], bool]] = []
        if "citizen" in RULES[action]:
            sides += [
                ("other citizen", citizen(hotline, other_citizen), False),
                ("own citizen", citizen(hotline, reg["citizen_id"]), True),
            ]
        if "department" in RULES[action]:
            sides += [("other department", dept(hotline, ENVIRONMENT), False), ("own department", dept(hotline, TRANSPORT), True)]
        assert sides, f"{op} [{action.value}] is scoped for neither citizens nor departments"
        for side, headers, own in sides:
            checked += 1
            if op.method == "GET":
                response = client.get(path, headers=headers)
            else:
                response = client.post(path, json=op.body, headers=headers)
            cell = f"{op} [{action.value}] as {side}: {response.status_code} {response.text[:200]}"
            if own and response.status_code in (401, 403):
                wrong.append(cell)
            if not own and response.status_code != 403:
                wrong.append(cell)
    print(f"\nscope matrix: {len(SCOPED)} operations, {checked} own/other cells, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("user", "dispatched_to", "named"),
    [
        ("transport", "environment", "environment"),  # another department's case, in its name
        ("environment", "transport", "transport"),
        ("transport", "transport", "environment"),  # its own case, in another department's name
        ("environment", "environment", "transport"),
    ],
)
def test_a_department_user_cannot_act_for_another_department(
    client: TestClient, hotline: Hotline, user: str, dispatched_to: str, named: str
) -> None:
    ref = new_request(client, hotline, department=dispatched_to)["reference"]
    r = client.post(f"/requests/{ref}/accept", json={"department_id": named}, headers=dept(hotline, [user]))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    r = client.post(f"/requests/{ref}/return", json={"department_id": named, "reason": "not ours"}, headers=dept(hotline, [user]))
    assert r.status_code == 403, r.text
    detail = ok(client.get(f"/requests/{ref}", headers=supervisor(hotline)))
    assert detail["status"] == "dispatched" and detail["department_id"] == dispatched_to


def test_department_lists_only_its_own_cases(client: TestClient, hotline: Hotline) -> None:
    mine = new_request(client, hotline)["reference"]
    theirs = new_request(client, hotline, phone="+39 347 111 2222", department="environment")["reference"]
    listed = [r["reference"] for r in ok(client.get("/requests", headers=dept(hotline, TRANSPORT)))["items"]]
    assert mine in listed and theirs not in listed
    r = client.get("/requests", params={"department_id": "environment"}, headers=dept(hotline, TRANSPORT))
    assert r.status_code == 403, r.text


def test_citizens_see_only_their_own_cases(client: TestClient, hotline: Hotline) -> None:
    first = new_request(client, hotline)
    second = new_request(client, hotline)  # the same phone: the same citizen
    assert second["citizen_id"] == first["citizen_id"]
    other = new_request(client, hotline, phone="+39 347 765 4321", name="Anna Bianchi")
    me = citizen(hotline, first["citizen_id"])

    listed = ok(client.get("/requests", headers=me))["items"]
    assert sorted(r["reference"] for r in listed) == sorted([first["reference"], second["reference"]])
    assert {r["citizen_id"] for r in listed} == {first["citizen_id"]}
    r = client.get("/requests", params={"citizen_id": other["citizen_id"]}, headers=me)
    assert r.status_code == 403, r.text

    r = client.get(f"/requests/{other['reference']}", headers=me)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["details"]["permission"] == "requests.read"
    assert "Anna" not in r.text
    r = client.get(f"/requests/{other['id']}", headers=me)  # by id as well as by reference
    assert r.status_code == 403, r.text


def test_a_citizen_never_sees_internal_notes(client: TestClient, hotline: Hotline) -> None:
    reg = new_request(client, hotline)
    ref = reg["reference"]
    ok(client.post(f"/requests/{ref}/notes", json={"text": "caller was rude, flag", "internal": True}, headers=agent(hotline)))
    ok(client.post(f"/requests/{ref}/notes", json={"text": "crew booked for Monday", "internal": False}, headers=agent(hotline)))

    staff_view = ok(client.get(f"/requests/{ref}", headers=agent(hotline)))
    staff_notes = [t["details"].get("text") for t in staff_view["timeline"] if name_of(t["type"]) == "note_added"]
    assert staff_notes == ["caller was rude, flag", "crew booked for Monday"]

    r = client.get(f"/requests/{ref}", headers=citizen(hotline, reg["citizen_id"]))
    own_view = ok(r)
    notes = [t["details"].get("text") for t in own_view["timeline"] if name_of(t["type"]) == "note_added"]
    assert notes == ["crew booked for Monday"]
    assert "caller was rude" not in r.text
    assert all(t["actor_id"] is None for t in own_view["timeline"]), "no staff names in a citizen's timeline"


def test_an_analyst_reads_no_personal_data(client: TestClient, hotline: Hotline) -> None:
    reg = new_request(client, hotline)
    analyst = auth(hotline, "analyst-1", "analyst")
    for path in (f"/citizens/{reg['citizen_id']}", "/requests", f"/requests/{reg['reference']}"):
        r = client.get(path, headers=analyst)
        assert r.status_code == 403, f"{path}: {r.status_code} {r.text}"
        assert "Mario" not in r.text
    r = client.get("/citizens", params={"phone": "+39 06 1234 5678"}, headers=analyst)
    assert r.status_code == 403, r.text
