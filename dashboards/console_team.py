"""The team of the chosen organization (``/team``): members and their roles, invitations by
e-mail with a role, pending invitations, and groups (invite codes, invitations to one person by
e-mail or Telegram username, members, their private events).

Everything through the API as the signed-in user: owners change roles and remove members,
owners and moderators invite, revoke invitations and manage groups, analysts read the groups (the
API shows members' contact details to owners and moderators only). A refusal is shown in the
API's words (the last owner cannot be demoted: ``last_owner``).
"""

from __future__ import annotations

import json

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, empty_state

PATH = "/team"
MANAGE_ROLES = {"owner", "moderator"}
ROLES = ("owner", "moderator", "analyst")
ROLE_NAMES = {"owner": "Owner", "moderator": "Moderator", "analyst": "Analyst"}


# --- pure pieces -----------------------------------------------------------------------------------


def refusal_text(exc: ApiError) -> str:
    """An API refusal as the page says it: the API's message and its stable code."""
    return f"{exc.message} ({exc.code})"


def invite_body(email: str | None, role: str | None) -> dict | None:
    """The invitation's body, or None without an address (the API would refuse it anyway)."""
    email = (email or "").strip()
    if not email:
        return None
    return {"email": email, "role": role if role in ROLES else "moderator"}


def person_invite_body(raw: str | None) -> dict | None:
    """A group invitation's addressee as the API takes it: an e-mail address, or a Telegram
    username (``@name`` or ``name``); None when nothing was typed."""
    text = (raw or "").strip()
    if not text:
        return None
    if "@" in text.lstrip("@"):
        return {"email": text}
    return {"telegram_username": text}


def join_snippet(api_base: str, code: str) -> str:
    """How an invitee joins a group with its code, as a copyable command."""
    body = json.dumps({"code": code})
    return (
        f"curl -X POST {api_base}/api/v1/group-invites/accept \\\n"
        f'  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )


def invitee(person: dict) -> str:
    """A member's or an invitation's address: the e-mail, else the Telegram username."""
    if person.get("email"):
        return person["email"]
    return f"@{person['telegram_username']}" if person.get("telegram_username") else "–"


# --- the page --------------------------------------------------------------------------------------


def page(client: ApiClient, org: dict):
    """The team page of ``org`` (the chosen organization, with the caller's ``role`` in it)."""
    role = org["role"]
    manager = role in MANAGE_ROLES
    try:
        body = sections(client, org)
    except ApiError as exc:
        return api_problem(exc, PATH)
    controls = []
    if manager:
        controls = [invite_form(role), group_form()]
    return html.Div(
        [
            dcc.Store(id="team-org", data={"id": org["id"], "role": role}),
            dcc.Store(id="team-version", data=0),
            dcc.Store(id="team-remove-who"),
            html.H1(f"Team of {org['name']}", className="h3 mb-1", id="team-title"),
            html.P(
                "Members, invitations and groups."
                + ("" if manager else " Read-only: owners and moderators manage the team."),
                className="text-body-secondary",
            ),
            html.Div(id="team-feedback", role="status", **{"aria-live": "polite"}),
            *controls,
            html.Div(body, id="team-body"),
            html.Div(id="team-group-code"),
            remove_modal() if manager else None,
        ],
        id="team-page",
    )


def sections(client: ApiClient, org: dict) -> list:
    role = org["role"]
    out = []
    if role in MANAGE_ROLES:
        members = client.every(f"/organizations/{org['id']}/members")
        invites = client.every(f"/organizations/{org['id']}/invitations")
        out += [members_card(members, role), invites_card(invites, role)]
    else:
        out.append(
            dbc.Alert(
                "Members and invitations are shown to owners and moderators.",
                color="light",
                id="team-members-hidden",
            )
        )
    groups = client.every(f"/organizations/{org['id']}/groups")
    out.append(groups_card(client, org, groups))
    return out


def members_card(members: list[dict], role: str):
    owner = role == "owner"
    rows = []
    for m in members:
        uid = m["user_id"]
        if owner:
            role_cell = dbc.Select(
                id={"type": "team-role", "user": uid, "was": m["role"]},
                options=[{"label": ROLE_NAMES[r], "value": r} for r in ROLES],
                value=m["role"],
                size="sm",
                style={"minWidth": "9rem"},
            )
            action = html.Button(
                "Remove",
                id={"type": "team-remove", "user": uid},
                className="btn btn-outline-danger btn-sm",
            )
        else:
            role_cell, action = ROLE_NAMES.get(m["role"], m["role"]), None
        rows.append(
            html.Tr(
                [
                    html.Td(m["display_name"]),
                    html.Td(invitee(m)),
                    html.Td(role_cell, className="team-role-cell"),
                    html.Td(fmt.parse_time(m["joined_at"]).strftime("%Y-%m-%d")),
                    html.Td(action),
                ],
                id={"type": "team-member", "user": uid},
                **{"data-role": m["role"]},
            )
        )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Members", className="h5"),
                dbc.Table(
                    [
                        html.Thead(
                            html.Tr([html.Th(h) for h in ("Name", "Contact", "Role", "Joined", "")])
                        ),
                        html.Tbody(rows),
                    ],
                    size="sm",
                    className="align-middle mb-0",
                    id="team-members",
                ),
            ]
        ),
        className="mb-3 shadow-sm",
    )


def invites_card(invites: list[dict], role: str):
    if not invites:
        table = html.P("No pending invitations.", className="text-body-secondary mb-0")
    else:
        rows = [
            html.Tr(
                [
                    html.Td(invitee(i)),
                    html.Td(ROLE_NAMES.get(i["role"], i["role"])),
                    html.Td(fmt.parse_time(i["expires_at"]).strftime("%Y-%m-%d %H:%M UTC")),
                    html.Td(
                        html.Button(
                            "Revoke",
                            id={"type": "team-revoke", "invite": i["id"]},
                            className="btn btn-outline-secondary btn-sm",
                        )
                        if role == "owner" or i["role"] != "owner"
                        else None
                    ),
                ],
                id={"type": "team-invite", "invite": i["id"]},
            )
            for i in invites
        ]
        table = dbc.Table(
            [
                html.Thead(html.Tr([html.Th(h) for h in ("Invitee", "Role", "Expires", "")])),
                html.Tbody(rows),
            ],
            size="sm",
            className="align-middle mb-0",
        )
    return dbc.Card(
        dbc.CardBody([html.H2("Pending invitations", className="h5"), table]),
        className="mb-3 shadow-sm",
        id="team-invites",
    )


def groups_card(client: ApiClient, org: dict, groups: list[dict]):
    manager = org["role"] in MANAGE_ROLES
    items = []
    for g in groups:
        events = client.every(f"/organizations/{org['id']}/events", group_id=g["id"])
        parts = [
            html.H3(g["name"], className="h6 mb-1"),
            html.Div(g.get("description") or "", className="small text-body-secondary"),
            html.Div(
                [
                    html.Span("Private events: ", className="fw-semibold"),
                    html.Span(
                        ", ".join(e["title"] for e in events) or "none",
                        id={"type": "team-group-events", "group": g["id"]},
                    ),
                ],
                className="small",
            ),
        ]
        if manager:
            members = client.every(f"/groups/{g['id']}/members")
            parts += [
                html.Div(
                    [
                        html.Span("Members: ", className="fw-semibold"),
                        html.Span(
                            ", ".join(m["display_name"] for m in members) or "none yet",
                            id={"type": "team-group-members", "group": g["id"]},
                        ),
                    ],
                    className="small",
                ),
                group_invitations(g["id"], client.every(f"/groups/{g['id']}/invitations")),
                dbc.InputGroup(
                    [
                        dbc.InputGroupText("One person"),
                        dbc.Input(
                            id={"type": "team-group-invitee", "group": g["id"]},
                            placeholder="E-mail or @telegram_username",
                            type="text",
                        ),
                        html.Button(
                            "Invite",
                            id={"type": "team-group-person", "group": g["id"]},
                            className="btn btn-outline-primary btn-sm",
                        ),
                    ],
                    size="sm",
                    className="mt-1",
                    style={"maxWidth": "28rem"},
                ),
                html.Button(
                    "New invite link",
                    id={"type": "team-group-invite", "group": g["id"]},
                    className="btn btn-outline-primary btn-sm mt-1",
                ),
            ]
        items.append(
            html.Li(parts, className="list-group-item", id={"type": "team-group", "group": g["id"]})
        )
    body = (
        html.Ul(items, className="list-group", id="team-groups")
        if items
        else empty_state("No groups yet", "Groups gate private events: only members see them.")
    )
    return dbc.Card(
        dbc.CardBody([html.H2("Groups", className="h5"), body]), className="mb-3 shadow-sm"
    )


def group_invitations(group_id: str, invites: list[dict]):
    """A group's pending invitations to one person each, with their revoke buttons."""
    if not invites:
        return html.Div(
            "No pending invitations.",
            className="small text-body-secondary",
            id={"type": "team-group-invitations", "group": group_id},
        )
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(invitee(i)),
                    html.Span(
                        " until " + fmt.parse_time(i["expires_at"]).strftime("%Y-%m-%d %H:%M UTC"),
                        className="text-body-secondary",
                    ),
                    html.Button(
                        "Revoke",
                        id={"type": "team-group-revoke", "group": group_id, "invite": i["id"]},
                        className="btn btn-link btn-sm py-0",
                    ),
                ],
                id={"type": "team-group-invitation", "invite": i["id"]},
            )
            for i in invites
        ],
        className="small mb-1",
        id={"type": "team-group-invitations", "group": group_id},
    )


def invite_form(role: str):
    roles = ROLES if role == "owner" else ROLES[1:]
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Invite a member", className="h5"),
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label("E-mail", html_for="team-invite-email"),
                                dbc.Input(id="team-invite-email", type="email"),
                            ],
                            md=5,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("Role", html_for="team-invite-role"),
                                dbc.Select(
                                    id="team-invite-role",
                                    options=[{"label": ROLE_NAMES[r], "value": r} for r in roles],
                                    value="moderator",
                                ),
                            ],
                            md=3,
                        ),
                        dbc.Col(
                            html.Button(
                                "Invite", id="team-invite-submit", className="btn btn-primary"
                            ),
                            md=2,
                            className="d-flex align-items-end",
                        ),
                    ],
                    className="g-2",
                ),
                html.Div(id="team-invite-token", className="small mt-2"),
            ]
        ),
        className="mb-3 shadow-sm",
    )


def group_form():
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("New group", className="h5"),
                dbc.InputGroup(
                    [
                        dbc.Input(id="team-group-name", placeholder="Group name"),
                        html.Button(
                            "Create group", id="team-group-create", className="btn btn-primary"
                        ),
                    ]
                ),
            ]
        ),
        className="mb-3 shadow-sm",
    )


def remove_modal():
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Remove this member?")),
            dbc.ModalBody(
                "They lose access to the organization at once; an invitation brings them back.",
                id="team-remove-text",
            ),
            dbc.ModalFooter(
                [
                    html.Button("Keep", id="team-remove-no", className="btn btn-secondary"),
                    html.Button("Remove", id="team-remove-yes", className="btn btn-danger"),
                ]
            ),
        ],
        id="team-remove-modal",
        is_open=False,
    )


def code_box(api_base: str, group_name: str, answer: dict):
    """A group's fresh invite code and the command that joins with it, both copyable."""
    code = answer["code"]
    expires = fmt.parse_time(answer["expires_at"]).strftime("%Y-%m-%d %H:%M UTC")
    return dbc.Alert(
        [
            html.Div(
                f"Invite code of {group_name} (until {expires}; the previous one stops working):"
            ),
            html.Code(code, id="team-group-code-value", className="fs-5"),
            dcc.Clipboard(target_id="team-group-code-value", className="d-inline-block ms-2"),
            html.Pre(
                join_snippet(api_base, code), id="team-group-snippet", className="small mt-2 mb-0"
            ),
            dcc.Clipboard(target_id="team-group-snippet", title="Copy the command"),
        ],
        color="info",
        className="mt-2",
    )


# --- actions ---------------------------------------------------------------------------------------


def _ok(text: str):
    return dbc.Alert(text, color="success", className="py-2", id="team-ok")


def _refused(exc: ApiError):
    return dbc.Alert(refusal_text(exc), color="danger", className="py-2", id="team-error")


def act(sessions, api_base: str, trigger, value, org: dict, state: dict):
    """One user action: ``(feedback, version bump, modal open, who to remove, invite token box,
    group code box)``; no_update where nothing changes."""
    keep = no_update
    try:
        client = sessions.client()
        if isinstance(trigger, dict) and trigger.get("type") == "team-role":
            if not value or value == trigger["was"]:
                return (keep,) * 6
            client.patch(f"/organizations/{org['id']}/members/{trigger['user']}", {"role": value})
            return _ok(f"Role changed to {ROLE_NAMES[value]}."), 1, keep, keep, keep, keep
        if isinstance(trigger, dict) and trigger.get("type") == "team-remove":
            return keep, 0, True, trigger["user"], keep, keep
        if trigger == "team-remove-no":
            return keep, 0, False, None, keep, keep
        if trigger == "team-remove-yes":
            if not state.get("remove_who"):
                return keep, 0, False, None, keep, keep
            client.delete(f"/organizations/{org['id']}/members/{state['remove_who']}")
            return _ok("Member removed."), 1, False, None, keep, keep
        if trigger == "team-invite-submit":
            body = invite_body(state.get("email"), state.get("role"))
            if body is None:
                return dbc.Alert("Type an e-mail address.", color="warning"), 0, *(keep,) * 4
            answer = client.post(f"/organizations/{org['id']}/invite", body)
            token = html.Div(
                [
                    f"Invitation to {answer['email']} as {ROLE_NAMES[answer['role']]}. "
                    "Its token (shown once; the invitee accepts with it): ",
                    html.Code(answer["token"], id="team-invite-token-value"),
                    dcc.Clipboard(target_id="team-invite-token-value", className="d-inline-block"),
                ]
            )
            return _ok("Invitation sent."), 1, keep, keep, token, keep
        if isinstance(trigger, dict) and trigger.get("type") == "team-revoke":
            client.delete(f"/organizations/{org['id']}/invitations/{trigger['invite']}")
            return _ok("Invitation revoked."), 1, keep, keep, keep, keep
        if trigger == "team-group-create":
            name = (state.get("group_name") or "").strip()
            if not name:
                return dbc.Alert("Name the group.", color="warning"), 0, *(keep,) * 4
            client.post(f"/organizations/{org['id']}/groups", {"name": name})
            return _ok(f"Group {name} created."), 1, keep, keep, keep, keep
        if isinstance(trigger, dict) and trigger.get("type") == "team-group-person":
            body = person_invite_body((state.get("invitees") or {}).get(trigger["group"]))
            if body is None:
                warning = "Type an e-mail address or a Telegram username."
                return dbc.Alert(warning, color="warning"), 0, *(keep,) * 4
            answer = client.post(f"/groups/{trigger['group']}/invitations", body)
            return _ok(f"Invitation to {invitee(answer)} sent."), 1, keep, keep, keep, keep
        if isinstance(trigger, dict) and trigger.get("type") == "team-group-revoke":
            client.delete(f"/groups/{trigger['group']}/invitations/{trigger['invite']}")
            return _ok("Invitation revoked."), 1, keep, keep, keep, keep
        if isinstance(trigger, dict) and trigger.get("type") == "team-group-invite":
            group = client.get(f"/groups/{trigger['group']}")
            answer = client.post(f"/groups/{trigger['group']}/invite", {})
            return keep, 0, keep, keep, keep, code_box(api_base, group["name"], answer)
    except Unauthorized as exc:
        return api_problem(exc, PATH), 0, False, None, keep, keep
    except ApiError as exc:
        return _refused(exc), 1, False, None, keep, keep
    return (keep,) * 6


def register(app: Dash, sessions) -> None:
    api_base = str(sessions.http.base_url).rstrip("/")

    @app.callback(
        Output("team-feedback", "children"),
        Output("team-version", "data"),
        Output("team-remove-modal", "is_open"),
        Output("team-remove-who", "data"),
        Output("team-invite-token", "children"),
        Output("team-group-code", "children"),
        Input({"type": "team-role", "user": ALL, "was": ALL}, "value"),
        Input({"type": "team-remove", "user": ALL}, "n_clicks"),
        Input("team-remove-yes", "n_clicks"),
        Input("team-remove-no", "n_clicks"),
        Input("team-invite-submit", "n_clicks"),
        Input({"type": "team-revoke", "invite": ALL}, "n_clicks"),
        Input("team-group-create", "n_clicks"),
        Input({"type": "team-group-invite", "group": ALL}, "n_clicks"),
        Input({"type": "team-group-person", "group": ALL}, "n_clicks"),
        Input({"type": "team-group-revoke", "group": ALL, "invite": ALL}, "n_clicks"),
        State("team-org", "data"),
        State("team-version", "data"),
        State("team-remove-who", "data"),
        State("team-invite-email", "value"),
        State("team-invite-role", "value"),
        State("team-group-name", "value"),
        State({"type": "team-group-invitee", "group": ALL}, "value"),
        prevent_initial_call=True,
    )
    def acted(*args):
        org, version, remove_who, email, role, group_name, _invitees = args[-7:]
        trigger = ctx.triggered_id
        fired = ctx.triggered[0]["value"] if ctx.triggered else None
        if trigger is None or (fired is None and not _is_select(trigger)):
            return (no_update,) * 6  # a re-rendered section, not a user's action
        # the addressee typed at each group, by the group's id
        invitees = {typed["id"]["group"]: typed.get("value") for typed in ctx.states_list[-1]}
        state = {"remove_who": remove_who, "email": email, "role": role,
                 "group_name": group_name, "invitees": invitees}  # fmt: skip
        out = list(act(sessions, api_base, trigger, fired, org, state))
        out[1] = (version or 0) + 1 if out[1] == 1 else no_update
        return tuple(out)

    @app.callback(
        Output("team-body", "children"),
        Input("team-version", "data"),
        State("team-org", "data"),
        State("orgs", "data"),
        prevent_initial_call=True,
    )
    def refreshed(_version, org, orgs):
        current = next((o for o in orgs or [] if o["id"] == org["id"]), None)
        if current is None:
            return no_update
        try:
            return sections(sessions.client(), current)
        except ApiError as exc:
            return api_problem(exc, PATH)


def _is_select(trigger) -> bool:
    return isinstance(trigger, dict) and trigger.get("type") == "team-role"
