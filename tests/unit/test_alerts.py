"""The emergency flow's domain, without the screens; the detached worker launch; the
queue's figures."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from console.config import Config, TopicConfig
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.i18n import Translator
from console.sending.alerts import (
    EVERYWHERE,
    AlertDraft,
    final_text,
    prefill,
    preview,
    send_alert,
    templates,
    zone_counts,
)
from console.sending.figures import bar, count, duration, percent, rate
from console.sending.worker_launch import start_detached, worker_command
from tests.conftest import make_context


def _town(ctx: Context) -> None:
    for i, zone in enumerate(("Le Bourg", "Le Bourg", "La Rive", "")):
        add_contact(ctx, ContactInput(number=f"06 30 00 00 0{i}", zone=zone))


def test_templates_are_prefilled_in_the_towns_time(ctx: Context) -> None:
    assert set(templates(ctx)) >= {"Inondation", "Accident de la route", "Confinement"}
    # 09:00 UTC on 14 March is 10h00 in Paris (winter time).
    text = prefill(ctx, AlertDraft(template="Inondation", everyone=False, zones=("La Rive",)))
    assert "Commune de démonstration" in text and "(La Rive)" in text
    assert "14/03/2026" in text and "10h00" in text
    everyone = prefill(ctx, AlertDraft(template="Inondation"))
    assert f"({EVERYWHERE})" in everyone
    # {lieu} is the operator's to type.
    assert "{lieu}" in prefill(ctx, AlertDraft(template="Accident de la route"))
    assert prefill(ctx, AlertDraft(text="Texte libre")) == "Texte libre"


def test_overseas_town_uses_its_own_clock(engine, clock) -> None:  # type: ignore[no-untyped-def]
    config = Config.model_validate({"town": {"name": "Saint-Pierre", "timezone": "Indian/Reunion"}})
    ctx = make_context(engine, config, clock)
    assert "13h00" in prefill(ctx, AlertDraft(template="Inondation"))


def test_zones_counts_and_preview(ctx: Context) -> None:
    _town(ctx)
    assert zone_counts(ctx) == [("La Rive", 1), ("Le Bourg", 2)]
    assert preview(ctx, AlertDraft(everyone=False, zones=("Le Bourg",))).recipients == 2
    assert preview(ctx, AlertDraft()).recipients == 4


def test_send_alert_reports_the_campaign_once_the_first_recipients_are_in(ctx: Context) -> None:
    _town(ctx)
    started: list[int] = []
    result = send_alert(
        ctx,
        AlertDraft(text="Crue : montez à l'étage", sender_id="MAIRIE"),
        on_started=started.append,
    )
    assert started == [result.campaign_id]
    assert result.counts["queued"] == 4


def test_final_text_adds_the_alert_topics_stop_mention(engine, clock) -> None:  # type: ignore[no-untyped-def]
    topics = dict(Config().topics)
    topics["alertes"] = TopicConfig(
        label="Alertes", legal_basis="public_safety", stop_mention="STOP au 36180"
    )
    ctx = make_context(engine, Config(topics=topics), clock)
    assert final_text(ctx, "Crue") == "Crue\nSTOP au 36180"
    assert final_text(ctx, "Crue\nSTOP au 36180") == "Crue\nSTOP au 36180"


def test_detached_worker_outlives_its_session(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "worker.log"
    launched = start_detached(
        [
            sys.executable,
            "-c",
            "import os, time; print('sid', os.getsid(0), flush=True); time.sleep(30)",
        ],
        log,
    )
    try:
        # Its own session: the SSH session's hang-up does not reach it.
        assert os.getsid(launched.pid) == launched.pid != os.getsid(0)
        for _ in range(100):
            if "sid" in log.read_text():
                break
            time.sleep(0.05)
        assert f"sid {launched.pid}" in log.read_text()
    finally:
        os.kill(launched.pid, signal.SIGTERM)
        os.waitpid(launched.pid, 0)


def test_worker_command_runs_this_interpreter() -> None:
    assert worker_command(None) == [sys.executable, "-m", "console", "worker"]
    assert worker_command("/etc/tocsin/config.toml")[-3:] == [
        "--config",
        "/etc/tocsin/config.toml",
        "worker",
    ]


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [(0, "░░░░░░░░░░"), (0.999, "█████████░"), (1, "██████████"), (0.5, "█████░░░░░")],
)
def test_bar_is_full_only_when_done(fraction: float, shown: str) -> None:
    assert bar(fraction, 10) == shown


def test_figures_in_french_and_english() -> None:
    fr, en = Translator("fr"), Translator("en")
    assert percent(0.999) == "99 %" and percent(1) == "100 %"
    assert duration(fr, None) == "—" and duration(fr, 42.2) == "43 s"
    assert duration(fr, 125) == "2 min 05 s" and duration(en, 3 * 3600 + 60) == "3 h 01 min"
    assert rate(fr, 0) == "—" and rate(fr, 2.5) == "2,5 msg/s" and rate(en, 18.25) == "18 msg/s"
    assert count(fr, 50000) == "50 000" and count(en, 50000) == "50,000"
