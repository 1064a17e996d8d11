"""Busy and unanswered lines are redialled by the faxbox's policy, and the report says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.config import Config, parse_config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_end_to_end import maildir_messages, send

FAST_REDIAL = {"busy": {"tries": 3, "interval": 0.3}, "no_answer": {"tries": 2, "interval": 0.3}}


def redial_bridge(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> BridgeThread:
    config = make_config()
    data = config.model_dump(by_alias=True, mode="json")
    data["faxboxes"][0]["redial"] = FAST_REDIAL
    return start_bridge(parse_config(data))


def settled(bridge: BridgeThread, to: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for job in bridge.store.jobs.recent():
            if job["to"] == to and job["status"] in ("delivered", "failed"):
                return bridge.store.jobs.get(job["id"])
        return None

    return wait_for(probe, timeout_s=40, what=f"a settled job for {to}")


def test_a_line_busy_every_time_is_dialled_as_often_as_the_policy_says(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = redial_bridge(make_config, start_bridge)
    send(bridge, fax_mail(to="12125550001@fax.localhost"), ["12125550001@fax.localhost"], "a@b.c")

    job = settled(bridge, "+12125550001")

    assert (job["status"], job["reason"], job["dials"]) == ("failed", "busy", 3)
    details = [h["detail"] for h in job["history"] if h["status"] == "queued"]
    assert any("on dial 1 of 3: redialling in 0.3 s" in d for d in details), details
    assert any("on dial 2 of 3: redialling in 0.3 s" in d for d in details), details
    sent = sorted(p.name for p in (bridge.config.storage.data_dir / "simulator/sent").iterdir())
    assert len(sent) == 3  # three dials, three transmissions at the provider
    (report,) = maildir_messages(bridge)
    text = " ".join(report.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "The receiving line was busy on each of 3 tries." in text
    assert "Tries: 3" in text


def test_a_line_busy_once_is_delivered_on_the_redial(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = redial_bridge(make_config, start_bridge)
    send(bridge, fax_mail(to="12125550006@fax.localhost"), ["12125550006@fax.localhost"], "a@b.c")

    job = settled(bridge, "+12125550006")

    assert (job["status"], job["dials"]) == ("delivered", 2)
    statuses = [h["status"] for h in job["history"]]
    assert statuses.count("delivered") == 1 and "failed" not in statuses
    (report,) = maildir_messages(bridge)
    assert report["Subject"].startswith("Fax to +1 212-555-0006 delivered")


def test_no_answer_has_its_own_number_of_tries(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = redial_bridge(make_config, start_bridge)
    send(bridge, fax_mail(to="12125550002@fax.localhost"), ["12125550002@fax.localhost"], "a@b.c")

    job = settled(bridge, "+12125550002")

    assert (job["status"], job["reason"], job["dials"]) == ("failed", "no_answer", 2)


def test_a_failure_that_is_not_the_lines_doing_is_never_redialled(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = redial_bridge(make_config, start_bridge)
    send(bridge, fax_mail(to="12125550003@fax.localhost"), ["12125550003@fax.localhost"], "a@b.c")

    job = settled(bridge, "+12125550003")

    assert (job["status"], job["reason"], job["dials"]) == ("failed", "bad_number", 1)
