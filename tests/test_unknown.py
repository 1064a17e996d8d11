"""No fax is left hanging: past `give_up_after`, or once its provider forgot it, a job ends as
`unknown`, its sender is told, a late final word still settles it, and `jobs retry` asks the
provider before sending the fax a second time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_end_to_end import maildir_messages, send

TO = "12125550123@fax.localhost"


def quiet_provider_bridge(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    **worker: Any,
) -> BridgeThread:
    """A simulator that cannot call the bridge back and is polled rarely."""
    return start_bridge(
        make_config(
            worker={"sweep_interval_s": 0.2, **worker},
            providers={"sim": {"callbacks": False, "status_poll_s": 3600, "delay_s": 0.2}},
            faxboxes=[
                {
                    "name": "main",
                    "domains": ["fax.localhost"],
                    "provider": "sim",
                    "caller_id": "+12125550100",
                    "admin": "faxadmin@example.com",
                }
            ],
        )
    )


def job_in(bridge: BridgeThread, status: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        jobs = [j for j in bridge.store.jobs.recent() if j["status"] == status]
        return bridge.store.jobs.get(jobs[0]["id"]) if jobs else None

    return wait_for(probe, timeout_s=30, what=f"a job that is {status}")


def body_text(message: Any) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def sent_files(bridge: BridgeThread) -> list[str]:
    return sorted(p.name for p in (bridge.config.storage.data_dir / "simulator/sent").iterdir())


def test_a_fax_with_no_final_word_ends_unknown_and_the_sender_is_told(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = quiet_provider_bridge(make_config, start_bridge, give_up_after="1s")
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")

    job = job_in(bridge, "unknown")

    assert job["reason"] == "expired"
    assert "no final word from the provider within" in job["history"][-1]["detail"]
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123: outcome unknown"
    assert report["To"] == "alice@example.com"
    assert report["Cc"] == "faxadmin@example.com"
    assert "ask the recipient whether it arrived before you send it again" in body_text(report)
    assert [j["id"] for j in bridge.store.jobs.recent(status="unknown")] == [job["id"]]


def test_retrying_an_unknown_fax_the_provider_delivered_adopts_it_instead_of_resending(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = quiet_provider_bridge(make_config, start_bridge, give_up_after="1s")
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")
    job = job_in(bridge, "unknown")
    assert sent_files(bridge) == [f"{job['provider_fax_id']}.pdf"]

    bridge.store.jobs.retry(job["id"])

    done = job_in(bridge, "delivered")
    assert done["id"] == job["id"]
    assert done["provider_fax_id"] == job["provider_fax_id"]
    assert sent_files(bridge) == [f"{job['provider_fax_id']}.pdf"]  # not transmitted twice
    details = " | ".join(h["detail"] for h in done["history"])
    assert f"found at sim as {job['provider_fax_id']} (delivered); adopted, not sent again" in (
        details
    )
    subjects = sorted(m["Subject"] for m in maildir_messages(bridge, 2))
    assert subjects == [
        "Fax to +1 212-555-0123 delivered (2 pages)",
        "Fax to +1 212-555-0123: outcome unknown",
    ]


def test_a_late_final_word_after_unknown_settles_the_job_and_follows_up(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = quiet_provider_bridge(make_config, start_bridge, give_up_after="1s")
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")
    job = job_in(bridge, "unknown")
    maildir_messages(bridge)  # the "outcome unknown" report is out
    token = (bridge.config.storage.data_dir / "simulator/callback_token").read_text().strip()
    callback = {
        "event": "status",
        "fax_id": job["provider_fax_id"],
        "job_id": job["id"],
        "status": "delivered",
        "code": "delivered",
        "text": "Fax delivered",
        "round": 0,
    }

    reply = httpx.post(f"{bridge.http_url}/callbacks/sim?token={token}", json=callback)

    assert reply.status_code == 200
    assert job_in(bridge, "delivered")["id"] == job["id"]
    late = [m for m in maildir_messages(bridge, 2) if "delivered" in m["Subject"]]
    assert len(late) == 1
    assert body_text(late[0]).startswith("This follows an earlier message that said the outcome")


def test_a_fax_the_provider_no_longer_knows_ends_unknown_after_the_grace(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(
        make_config(
            worker={"sweep_interval_s": 0.2},
            providers={
                "sim": {
                    "callbacks": False,
                    "status_poll_s": 0.2,
                    "delay_s": 3600,
                    "forgotten_grace_s": 1,
                }
            },
        )
    )
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")
    job = job_in(bridge, "submitted")
    state = bridge.config.storage.data_dir / "simulator/state" / f"{job['provider_fax_id']}.json"
    state.unlink()  # the provider deletes the fax (as HelloFax does once it called back)

    ended = job_in(bridge, "unknown")

    assert ended["id"] == job["id"]
    details = [h["detail"] for h in ended["history"]]
    assert any("the provider no longer knows fax" in d and "waiting up to" in d for d in details)
    assert "sent no final word within" in details[-1]
    (report,) = maildir_messages(bridge)
    assert report["Subject"] == "Fax to +1 212-555-0123: outcome unknown"
