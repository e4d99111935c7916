"""An import's consent (--consent TOPIC): granted to each kept row with no decision
on the topic yet, through the consent ledger; STOP and withdrawn ones flagged."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from console.consent.ledger import ConsentError, ConsentRequest, append_grants, validate
from console.consent.suppression import number_hash
from console.contacts.importer.options import ImportOptions
from console.contacts.importer.report import ImportFailed, RowIssue
from console.contacts.importer.rows import Good, issue
from console.contacts.importer.writing import chunks
from console.context import Context
from storage.models import consent_state_table, suppression_table


def _suppressed(conn: Connection, ctx: Context, numbers: Sequence[str]) -> set[str]:
    by_hash = {number_hash(ctx.hash_key, n): n for n in numbers}
    found: set[str] = set()
    col = suppression_table.c.number_hash
    for part in chunks(list(by_hash)):
        for (digest,) in conn.execute(select(col).where(col.in_(part))):
            found.add(by_hash[digest])
    return found


def _states(conn: Connection, topic: str, ids: Sequence[int]) -> dict[int, bool]:
    found: dict[int, bool] = {}
    for part in chunks(ids):
        for contact_id, granted in conn.execute(
            select(consent_state_table.c.contact_id, consent_state_table.c.granted).where(
                consent_state_table.c.topic == topic, consent_state_table.c.contact_id.in_(part)
            )
        ):
            found[contact_id] = bool(granted)
    return found


def consents(
    conn: Connection,
    ctx: Context,
    options: ImportOptions,
    kept: Sequence[tuple[Good, int]],
    write: bool,
    topic: str,
) -> tuple[list[RowIssue], int]:
    """Grant `topic` to each kept row with no decision on it yet; return the rows
    flagged and the number of grants."""
    issues: list[RowIssue] = []
    suppressed = _suppressed(conn, ctx, [good[1][0] for good, _ in kept])
    states = _states(conn, topic, [cid for _, cid in kept if cid])
    to_grant: list[int] = []
    for good, contact_id in kept:
        if good[1][0] in suppressed:
            issues.append(
                issue(
                    good[0],
                    "flagged",
                    "suppressed",
                    "on the suppression list (STOP): consent not recorded",
                    "a répondu STOP (liste d'opposition) : consentement non enregistré",
                    good[2] or [],
                )
            )
        elif states.get(contact_id) is False:
            issues.append(
                issue(
                    good[0],
                    "flagged",
                    "withdrawn",
                    "consent withdrawn earlier: not granted again by an import",
                    "consentement retiré auparavant : un import ne le rétablit pas",
                    good[2] or [],
                )
            )
        elif contact_id not in states:
            to_grant.append(contact_id)
    if write and to_grant:
        append_grants(conn, ctx, grant_request(options, topic), to_grant)
    return issues, len(to_grant)


def grant_request(options: ImportOptions, topic: str | None = None) -> ConsentRequest:
    """The grant each kept row gets (the contact aside)."""
    topic = topic or options.consent_topic
    assert topic is not None
    return ConsentRequest(
        contact_id=0,
        topic=topic,
        action="grant",
        source=options.consent_source,
        proof_ref=options.consent_proof,
        text_version=options.consent_text_version,
        occurred_at=options.consent_at,
    )


def validate_consent(ctx: Context, options: ImportOptions) -> None:
    try:
        for topic in options.consent_topics:
            validate(ctx, grant_request(options, topic))
    except ConsentError as exc:
        raise ImportFailed(f"consent for the import: {exc}") from exc
    # The grants are inserted in bulk: check what the columns would refuse.
    for what, value, limit in (
        ("proof reference", options.consent_proof.strip(), 500),
        ("consent text version", options.consent_text_version, 50),
        ("operator name", ctx.operator, 100),
    ):
        if len(value) > limit:
            raise ImportFailed(f"consent for the import: {what} longer than {limit} characters")
