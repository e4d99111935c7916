"""What a message costs, without a database: tocsin message check."""

from __future__ import annotations

import argparse
import sys

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    print_json,
    translator,
)
from console.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    message = sub.add_parser("message", help="what a message costs (no database needed)")
    message_sub = message.add_subparsers(dest="action", required=True)
    check = message_sub.add_parser(
        "check",
        help="characters, encoding, SMS parts, characters forcing UCS-2 and the GSM-7 suggestion",
    )
    check.add_argument("text", help='the message; "-" reads it from standard input')
    check.add_argument("--topic", help="append that topic's STOP mention first, as a send does")
    check.add_argument("--json", action="store_true")

    message.set_defaults(handler=cmd_message)


def cmd_message(args: argparse.Namespace, config: Config) -> int:
    from console.composing.composer import (
        analyse,
        describe_character,
        estimate_cost,
        unfilled_placeholders,
        with_stop_mention,
    )
    from console.text import visible

    # From stdin, the newline that ends the last line is the shell's, not the message's.
    text = sys.stdin.read().rstrip("\r\n") if args.text == "-" else args.text
    mention = ""
    if args.topic is not None:
        topic = config.topics.get(args.topic)
        if topic is None:
            raise CliError(
                translator(config)(
                    "cli.unknown_topic", topic=repr(args.topic), topics=", ".join(config.topics)
                ),
                EXIT_USAGE,
            )
        mention = topic.stop_mention
        text = with_stop_mention(text, mention)
    analysis = analyse(text)
    if args.json:
        data = analysis.to_json()
        if args.topic is not None:
            data["topic"] = args.topic
        print_json(data)
        return EXIT_OK
    t = translator(config)
    lines = []
    if args.topic is not None and mention and text.endswith(mention.strip()):
        lines.append(
            t("message.topic", topic=config.topics[args.topic].label, mention=mention.strip())
        )
    lines += [
        t("message.characters", count=analysis.characters),
        t("message.encoding", encoding=analysis.encoding),
        t("message.units", units=analysis.units, per_segment=analysis.per_segment),
        t("message.segments", segments=analysis.segments, remaining=analysis.remaining),
    ]
    if analysis.ucs2_characters:
        lines.append(
            t(
                "message.ucs2",
                characters=", ".join(describe_character(c) for c in analysis.ucs2_characters),
            )
        )
    if analysis.gsm7_suggestion is not None:
        lines.append(
            t(
                "message.suggestion",
                segments=analysis.suggestion_segments,
                units=analysis.suggestion_units,
            )
        )
        lines += [f"  {line}" for line in analysis.gsm7_suggestion.split("\n")]
    unfilled = unfilled_placeholders(text)
    if unfilled:
        lines.append(
            t("message.unfilled", placeholders=", ".join(f"{{{name}}}" for name in unfilled))
        )
    cost = f"{estimate_cost(analysis.segments, 1, config.provider.price_per_segment):.2f}"
    lines.append(t("message.cost", cost=cost.replace(".", ",") if t.language == "fr" else cost))
    for line in lines:
        print(visible(line))
    return EXIT_OK
