"""The store's reducer on its own: what a load's answer does to events that overtook it."""

from __future__ import annotations

from tui.store import EventArrived, Fetched, Store, UsersLoaded

T = "2026-11-25T19:00:00Z"


def user(n: int) -> dict:
    return {"id": f"usr_{n}", "email": f"u{n}@example.com", "display_name": "", "role": "user", "disabled": False,
            "created_at": T, "updated_at": T, "last_login_at": None}


def created(n: int) -> EventArrived:
    return EventArrived({"type": "event", "id": f"{n}-0", "topic": "users", "event": "user.created", "at": T,
                         "data": user(n)})


def test_an_event_that_overtakes_a_load_survives_its_answer() -> None:
    from shared.models.users import User

    store = Store()
    asked_at = store.state.events_seen  # the Users screen asks for the list...
    store.apply(created(2))  # ...a user is created and its event comes first...
    store.apply(Fetched(UsersLoaded([User.model_validate(user(1))]), asked_at))  # ...then the older list
    assert set(store.state.users) == {"usr_1", "usr_2"}


def test_events_before_the_load_was_asked_for_are_not_folded_again() -> None:
    from shared.models.users import User

    store = Store()
    store.apply(created(2))
    asked_at = store.state.events_seen
    store.apply(Fetched(UsersLoaded([User.model_validate(user(1))]), asked_at))  # the user was deleted since
    assert set(store.state.users) == {"usr_1"}
