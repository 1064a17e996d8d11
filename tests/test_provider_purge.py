"""`delete_after_delivery`: once the report is out, the fax and its files leave the provider."""

from __future__ import annotations

from collections.abc import Callable

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.helpers import wait_for
from tests.messages import fax_mail
from tests.test_end_to_end import final_job, maildir_messages, send

TO = "12125550123@fax.localhost"


def purging_bridge(
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
    delete: bool,
) -> BridgeThread:
    config = make_config(worker={"sweep_interval_s": 0.2})
    data = config.model_dump(by_alias=True, mode="json")
    data["faxboxes"][0]["delete_after_delivery"] = delete
    return start_bridge(Config.model_validate(data))


def test_a_delivered_fax_is_deleted_at_the_provider_after_its_report(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = purging_bridge(make_config, start_bridge, delete=True)
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")
    job = final_job(bridge, "+12125550123")
    fax_id = job["provider_fax_id"]
    sim = bridge.config.storage.data_dir / "simulator"

    maildir_messages(bridge)  # the report went out first
    purged = wait_for(
        lambda: (
            (found := bridge.store.jobs.get(job["id"]))
            and "and its files at sim" in found["history"][-1]["detail"]
            and found
        ),
        what="the purge",
    )

    assert purged["history"][-1]["detail"] == f"deleted fax {fax_id} and its files at sim"
    assert not (sim / "sent" / f"{fax_id}.pdf").exists()
    assert not (sim / "state" / f"{fax_id}.json").exists()
    assert bridge.store.jobs.row(job["id"]).purge == "done"  # type: ignore[union-attr]


def test_without_the_setting_the_provider_keeps_the_fax(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = purging_bridge(make_config, start_bridge, delete=False)
    send(bridge, fax_mail(to=TO), [TO], "alice@example.com")
    job = final_job(bridge, "+12125550123")
    maildir_messages(bridge)

    sim = bridge.config.storage.data_dir / "simulator"
    assert (sim / "sent" / f"{job['provider_fax_id']}.pdf").exists()
    assert bridge.store.jobs.row(job["id"]).purge is None  # type: ignore[union-attr]
