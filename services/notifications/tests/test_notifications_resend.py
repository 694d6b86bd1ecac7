"""The operator sends a failed notification again (`python -m gather_shared admin resend`, the operator's
toolkit in gather_shared.admin), once the cause is fixed: the sender then sends it as it would a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gather_shared import admin

if TYPE_CHECKING:
    from conftest import Mailbox, World


def test_a_failed_notification_resent_by_the_operator_goes_out(
    world: World, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.publish()
    world.register(consent_reminders=False)
    mailbox.replies = ["550 5.1.1 No such user"]  # a refusal the sender does not retry
    world.run_sender(world.now)
    [failed] = world.notifications()
    assert (failed.status, failed.attempts) == ("failed", 1)

    monkeypatch.setenv("GATHER_DATABASE_URL", world.rt.settings.database_url)
    assert admin.main(["resend", str(failed.id)]) == 0
    output = capsys.readouterr().out
    assert f"notification {failed.id} (signup_confirmed by email): failed → pending" in output
    assert "robin" not in output.lower()

    world.run_sender(world.now)
    [sent] = world.notifications()
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None)
    assert len(mailbox.to("robin@example.org")) == 1
    # Only a failed one is sent again: a sent one is left as it is.
    assert admin.main(["resend", str(sent.id)]) == 1
    assert "is sent, not failed: left as it is" in capsys.readouterr().err


def test_resending_an_unknown_or_malformed_id_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATHER_DATABASE_URL", world.rt.settings.database_url)
    assert admin.main(["resend", "00000000-0000-4000-8000-000000000000"]) == 1
    assert "no notification 00000000-0000-4000-8000-000000000000" in capsys.readouterr().err
    assert admin.main(["resend", "robin@example.org"]) == 2
