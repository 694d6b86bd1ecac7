"""The attendee pages' routes. Each page state has a URL of its own; a form's POST answers with the page
again (with its errors, status 4xx) or redirects to the next page (303), so that reloading never sends a
form twice. Private links (verify, manage, unsubscribe) are answered `Cache-Control: no-store`.

URL map: docs in services/pages/README.md."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from gather_pages import forms, i18n, page_cache
from gather_pages.apis import Apis
from gather_pages.availability import places
from gather_pages.forms import ConfirmForm, EraseForm, ManageForm, RegistrationForm, SearchForm
from gather_pages.store import EVENT_WITH_SEATS, listing
from gather_shared import calendar, web
from gather_shared.db import utcnow
from gather_shared.vocabulary import ONLINE_FORMATS, Channel, RegistrationStatus

bp = Blueprint("pages", __name__)

PAGE_SIZE = 20
MAX_PAGE = 500


def apis() -> Apis:
    return current_app.extensions["gather_apis"]


def private(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page behind a private link: `Cache-Control: no-store` (app.py), whatever the answer."""

    @functools.wraps(view)
    def marked(*args: Any, **kwargs: Any) -> Any:
        g.private = True
        return view(*args, **kwargs)

    return marked


def find_event(event_id: uuid.UUID | str | None) -> Any:
    """An event with its seats (a row of store.EVENT_WITH_SEATS), or None."""
    if event_id is None:
        return None
    with web.current_runtime().engine.connect() as conn:  # a read: no ORM session needed
        return conn.execute(EVENT_WITH_SEATS, {"event_id": uuid.UUID(str(event_id))}).first()


def see_other(endpoint: str, **values: Any) -> WerkzeugResponse:
    return redirect(url_for(endpoint, **values), code=303)


# --- finding an event -------------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    """Upcoming events, soonest first, with search and filters; page by page."""
    form = SearchForm(formdata=request.args)
    form.validate()
    form.plain_errors()
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    now = utcnow()
    with web.current_runtime().engine.connect() as conn:
        rows = conn.execute(listing(form.search(), now, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)).all()
    events = [(row, places(row, now)) for row in rows[:PAGE_SIZE]]
    state = (
        "listing",
        request.query_string,
        i18n.current_locale(),
        len(rows),
        tuple((page_cache.event_state(row), seats) for row, seats in events),
    )
    filters: MultiDict[str, Any] = MultiDict((k, v) for k, v in request.args.items(multi=True) if k != "page" and v)
    return page_cache.page(
        state,
        lambda: render_template(
            "listing.html",
            form=form,
            events=events,
            page=page,
            first=(page - 1) * PAGE_SIZE + 1,
            previous_url=url_for("pages.home", page=page - 1, **filters) if page > 1 else None,
            next_url=url_for("pages.home", page=page + 1, **filters) if len(rows) > PAGE_SIZE else None,
            filtered=bool(filters),
        ),
    )


@bp.route("/events/<uuid:event_id>", methods=["GET", "POST"])
def event_page(event_id: uuid.UUID) -> Any:
    """Everything public about the event, and the registration form (POST: register)."""
    event = find_event(event_id)
    if event is None:
        abort(404)
    i18n.speak(event.language)
    now = utcnow()
    seats = places(event, now)

    def render(form: RegistrationForm) -> str:
        return render_template("event.html", event=event, seats=seats, form=form, zones=forms.time_zone_options)

    if request.method == "GET":  # the same page for everyone: the event's version, seats and language
        state = ("event", page_cache.event_state(event), seats, i18n.current_locale())
        return page_cache.page(state, lambda: render(RegistrationForm(formdata=None, timezone=event.timezone)))
    form = RegistrationForm(timezone=event.timezone)
    if not seats.accepting:
        form.form_errors.append(forms.closed(seats, event))
        return render(form), 409
    if not form.validate():
        return render(form), 422
    answer = apis().register(event_id, form.api_body())
    if answer.status == 202:
        return see_other("pages.check_your_messages", event_id=event_id)
    if answer.status == 201:  # an event that needs no verification: the place is theirs at once
        return see_other(
            "pages.manage", signup_id=answer.body["id"], token=answer.body["manage_token"], done="registered"
        )
    form.refused(answer)
    return render(form), answer.status


@bp.get("/events/<uuid:event_id>/calendar.ics")
def event_calendar(event_id: uuid.UUID) -> Response:
    event = find_event(event_id)
    if event is None:
        abort(404)
    response = Response(calendar.ics([calendar.vevent(event)]), mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="gather-{event_id}.ics"'
    return response


@bp.get("/events/<uuid:event_id>/check-your-messages")
def check_your_messages(event_id: uuid.UUID) -> str:
    event = find_event(event_id)
    if event is None:
        abort(404)
    i18n.speak(event.language)
    return render_template(
        "check_your_messages.html", event=event, minutes=web.current_runtime().settings.verify_minutes
    )


# --- the link in the message: verify ----------------------------------------------------------------


@bp.route("/verify/<token>", methods=["GET", "POST"])
@private
def verify(token: str) -> Any:
    """GET shows one button; only its POST verifies (mail scanners and link previews fetch links)."""
    form = ConfirmForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("verify.html", form=form)
    answer = apis().verify(token)
    event = find_event(answer.body.get("event_id"))
    if event is not None:
        i18n.speak(event.language)
    if answer.ok and answer.body.get("manage_token"):  # the place, at its own stable (private) address
        return see_other(
            "pages.manage", signup_id=answer.body["id"], token=answer.body["manage_token"], done="verified"
        )
    if answer.ok:
        return render_template("verified.html", registration=answer.body, event=event)
    if answer.status == 429:
        form.form_errors.append(forms.too_many())
        return render_template("verify.html", form=form), 429
    return render_template("link_expired.html", event=event), 410


# --- the link in the message: manage ----------------------------------------------------------------


def registration_or_404(signup_id: uuid.UUID, token: str) -> tuple[dict[str, Any], Any]:
    """The registration behind a manage link, and its event; a link that does not open is a 404 page."""
    answer = apis().registration(signup_id, token)
    if not answer.ok:
        abort(404)
    event = find_event(answer.body["event_id"])
    i18n.speak(event.language if event is not None else None)
    return answer.body, event


def shows_online_link(registration: dict[str, Any], event: Any) -> bool:
    """The online link is for confirmed attendees of an online or hybrid event, and for nobody else."""
    return (
        event is not None
        and registration["status"] == RegistrationStatus.CONFIRMED
        and event.format in ONLINE_FORMATS
        and bool(event.online_url)
    )


def reachable(registration: dict[str, Any]) -> tuple[str, ...]:
    """The channels a registration has a contact for."""
    contacts = {Channel.EMAIL: registration.get("email"), Channel.SMS: registration.get("phone")}
    return tuple(channel for channel, contact in contacts.items() if contact)


@bp.route("/manage/<uuid:signup_id>/<token>", methods=["GET", "POST"])
@private
def manage(signup_id: uuid.UUID, token: str) -> Any:
    """The registration: status, waiting list position, the online link for confirmed attendees; POST
    saves changes to name, channels, reminders and time zone."""
    registration, event = registration_or_404(signup_id, token)
    details = {
        "display_name": registration["display_name"],
        "channels": registration["channels"],
        "reminders": registration["consent"]["reminders"],
        "timezone": registration["timezone"] or (event.timezone if event is not None else None),
    }
    form = ManageForm(data=details, reachable=reachable(registration))
    status = 200
    if request.method == "POST":
        if form.validate():
            answer = apis().change(signup_id, token, form.api_body())
            if answer.ok:
                return see_other("pages.manage", signup_id=signup_id, token=token, done="saved")
            form.refused(answer)
            status = answer.status
        else:
            status = 422
    return (
        render_template(
            "manage.html",
            registration=registration,
            event=event,
            form=form,
            zones=forms.time_zone_options,
            done=request.args.get("done"),
            token=token,
            show_online_link=shows_online_link(registration, event),
        ),
        status,
    )


@bp.route("/manage/<uuid:signup_id>/<token>/cancel", methods=["GET", "POST"])
@private
def cancel(signup_id: uuid.UUID, token: str) -> Any:
    """Are you sure? POST cancels (the place goes to the longest-waiting at once)."""
    registration, event = registration_or_404(signup_id, token)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        apis().cancel(signup_id, token, erase=False)
        return see_other("pages.manage", signup_id=signup_id, token=token, done="cancelled")
    return render_template("cancel.html", registration=registration, event=event, form=form, token=token)


@bp.route("/manage/<uuid:signup_id>/<token>/delete", methods=["GET", "POST"])
@private
def delete(signup_id: uuid.UUID, token: str) -> Any:
    """Cancel and delete my details, once the person ticked that they understand. Afterwards the link no
    longer opens anything, so the answer is a page of its own."""
    registration, event = registration_or_404(signup_id, token)
    form = EraseForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            apis().cancel(signup_id, token, erase=True)
            return see_other("pages.details_deleted", event_id=registration["event_id"])
        status = 422
    return (
        render_template("delete.html", registration=registration, event=event, form=form, token=token),
        status,
    )


@bp.get("/events/<uuid:event_id>/details-deleted")
def details_deleted(event_id: uuid.UUID) -> str:
    event = find_event(event_id)
    if event is not None:
        i18n.speak(event.language)
    return render_template("details_deleted.html", event=event)


# --- the link in the message: unsubscribe -----------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@private
def unsubscribe(token: str) -> Any:
    """GET asks; only POST stops the reminders (mail scanners fetch links)."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        answer = apis().unsubscribe(token)
        if answer.ok:
            return render_template("unsubscribed.html")
        if answer.status == 429:
            form.form_errors.append(forms.too_many())
            return render_template("unsubscribe.html", form=form), 429
        abort(404)
    return render_template("unsubscribe.html", form=form)
