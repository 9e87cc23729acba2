"""Block Kit rendering: the neutral `Card` (and plain messages) as Slack blocks.

Built with `slack_sdk.models.blocks` and serialised with `.to_dict()`, which validates most
limits. Slack's limits are met by truncating (with "…") rather than failing: a deploy must
never stop because a commit subject was long. Every dynamic text is escaped for mrkdwn (`&`,
`<`, `>`), so text from users or commits can never ping `@channel` or forge a link; Slack
user ids in people fields become mentions.

Layout: header · fields · extra lines · warnings · changelog · checklist (checkbox groups of at
most 10 items, a phase starting a new one, each a section headed by its phase: action
`checklist` — `signoff_checklist` on a sign-off card —, option values = item numbers, block_id
`<action>:<deployment id>`, with `:<first>-<last>` when there are several) · approvals (context) ·
status · buttons (action_id = button.action, value = button.value) · footer (context).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.actions import Action
from bot.domain.card import Button, Card, ChecklistItem

MAX_BLOCKS = 50
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
CONTEXT_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
MAX_OPTIONS = 10
OPTION_TEXT = 75
MAX_ACTIONS = 25
FALLBACK_TEXT = 3000
THREAD_TEXT = 3000
REPLY_TEXT = 12000  # a text-only message may be 40,000; keep replies readable
ELLIPSIS = "…"

# Slack user ids (U… or W…, with at least one digit so ordinary capitalised words never match).
_USER_ID = re.compile(r"(?<![\w@<|])([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{6,11})(?![\w>|])")
_GROUP_ID = re.compile(r"^S(?=[A-Z0-9]*[0-9])[A-Z0-9]{6,11}$")
_PEOPLE_FIELDS = frozenset({"Requested by", "Deployed by", "Approved by", "Signed off by"})


def escape(text: str) -> str:
    """Escape text for Slack (`&`, `<`, `>`); the only characters Slack requires escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<`, `>` (how slash-command text arrives)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mention(who: str) -> str:
    """A mention for a user id (`<@U…>`) or user group id (`<!subteam^S…>`); other names as text."""
    if _GROUP_ID.match(who):
        return f"<!subteam^{who}>"
    if _USER_ID.fullmatch(who):
        return f"<@{who}>"
    return escape(who)


def link_users(escaped: str) -> str:
    """Turn Slack user ids in already-escaped text into mentions."""
    return _USER_ID.sub(r"<@\1>", escaped)


def mrkdwn(text: str, *, people: bool = False) -> str:
    """Escape dynamic text for mrkdwn; with `people`, user ids become mentions."""
    out = escape(text)
    return link_users(out) if people else out


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when cut (never inside an `&…;` entity)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    amp = cut.rfind("&", max(len(cut) - 5, 0))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<", max(len(cut) - 40, 0))
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]  # never leave half a mention
    return cut + ELLIPSIS


def truncate_tail(text: str, limit: int) -> str:
    """Keep the end of `text` (logs: the last lines matter), noting what was cut."""
    if len(text) <= limit:
        return text
    keep = text[-max(limit - 40, 0) :]
    newline = keep.find("\n")
    if 0 <= newline < 200:
        keep = keep[newline + 1 :]
    amp = keep.find(";", 0, 6)
    if amp != -1 and "&" not in keep[:amp]:
        keep = keep[amp + 1 :]
    return f"{ELLIPSIS}({len(text) - len(keep)} earlier characters cut)\n{keep}"[:limit]


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT)), block_id=block_id)


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(
        elements=[MarkdownTextObject(text=truncate(t, CONTEXT_TEXT)) for t in texts[:MAX_CONTEXT_ELEMENTS]]
    )


def _block_id(kind: str, deployment_id: int, part: str | None = None) -> str:
    return (f"{kind}:{deployment_id}" + (f":{part}" if part else ""))[:ID_LENGTH]


def _buttons(buttons: Sequence[Button], block_id: str | None) -> ActionsBlock:
    return ActionsBlock(
        block_id=block_id,
        elements=[
            ButtonElement(
                text=PlainTextObject(text=truncate(b.label, BUTTON_TEXT), emoji=True),
                action_id=b.action[:ID_LENGTH],
                value=b.value[:BUTTON_VALUE],
                style=b.style,
            )
            for b in buttons[:MAX_ACTIONS]
        ],
    )


def _changelog(card: Card) -> str | None:
    if not card.changelog and not card.changelog_note:
        return None
    head = "*Changelog*"
    note = f"\n_{mrkdwn(card.changelog_note)}_" if card.changelog_note else ""
    lines: list[str] = []
    used = len(head) + len(note)
    for i, raw in enumerate(card.changelog):
        line = "\n• " + truncate(mrkdwn(raw), 300)
        if used + len(line) + 40 > SECTION_TEXT:  # keep room for the "…and N more" note
            lines.append(f"\n…and {len(card.changelog) - i} more")
            break
        lines.append(line)
        used += len(line)
    return truncate(head + "".join(lines) + note, SECTION_TEXT)


def checklist_groups(items: Sequence[ChecklistItem]) -> list[list[ChecklistItem]]:
    """The checkbox groups a checklist shows as: each phase starts one, at most 10 items each."""
    groups: list[list[ChecklistItem]] = []
    for item in items:
        last = groups[-1] if groups else None
        if last is None or len(last) >= MAX_OPTIONS or last[-1].phase != item.phase:
            groups.append([item])
        else:
            last.append(item)
    return groups


def _checklist(card: Card) -> list[Block]:
    """One section per checkbox group (Block Kit allows 10 options per group, not per message):
    block_id `<action>:<deployment id>:<first>-<last>` names the items it holds (just
    `<action>:<deployment id>` when there is one group); a phase's name heads its first group."""
    if not card.checklist:
        return []
    signoff = card.kind == "signoff"
    title = "*Sign-off checklist*" if signoff else "*Pre-deploy checklist*"
    action_id = Action.SIGNOFF_CHECKLIST if signoff else Action.CHECKLIST
    out: list[Block] = []
    previous: str | None = None
    groups = checklist_groups(card.checklist)
    for n, group in enumerate(groups):
        phase = group[0].phase
        head = [title] if n == 0 else []
        if phase is not None:
            head.append(f"*{mrkdwn(phase)}*" if phase != previous else f"_{mrkdwn(phase)}, continued_")
        previous = phase
        label = "\n".join(head) or "…"
        first, last = group[0].number, group[-1].number
        if card.checklist_open:
            options = [
                Option(
                    value=str(i.number), text=PlainTextObject(text=truncate(i.text, OPTION_TEXT), emoji=True)
                )
                for i in group
            ]
            ticked = [o for o, i in zip(options, group, strict=True) if i.ticked]
            out.append(
                SectionBlock(
                    block_id=_block_id(
                        action_id, card.deployment_id, f"{first}-{last}" if len(groups) > 1 else None
                    ),
                    text=MarkdownTextObject(text=truncate(label, SECTION_TEXT)),
                    accessory=CheckboxesElement(
                        action_id=action_id, options=options, initial_options=ticked or None
                    ),
                )
            )
        else:
            lines = [f"{'☑' if i.ticked else '☐'} {i.number}. {mrkdwn(i.text)}" for i in group]
            out.append(_section(label + "\n" + "\n".join(lines)))
    return out


def card_blocks(card: Card) -> list[dict[str, Any]]:
    """The card as Block Kit JSON (validated by slack_sdk), within Slack's limits."""
    did = card.deployment_id
    blocks: list[Block] = [
        HeaderBlock(
            block_id=_block_id("title", did),
            text=PlainTextObject(text=truncate(card.title, HEADER_TEXT), emoji=True),
        )
    ]
    if card.fields:
        fields = [
            MarkdownTextObject(
                text=truncate(f"*{mrkdwn(k)}*\n{mrkdwn(v, people=k in _PEOPLE_FIELDS)}", FIELD_TEXT)
            )
            for k, v in card.fields[:MAX_FIELDS]
        ]
        blocks.append(SectionBlock(block_id=_block_id("fields", did), fields=fields))
    if card.lines:
        blocks.append(_section("\n".join(mrkdwn(line, people=True) for line in card.lines)))
    if card.warnings:
        blocks.append(_section("\n".join(f"⚠️ {mrkdwn(w)}" for w in card.warnings)))
    changelog = _changelog(card)
    if changelog:
        blocks.append(_section(changelog, _block_id("changelog", did)))
    blocks.extend(_checklist(card))
    if card.approvals_line:
        blocks.append(_context(mrkdwn(card.approvals_line, people=True)))
    blocks.append(_section(f"*{mrkdwn(card.status_line, people=True)}*", _block_id("status", did)))
    if card.buttons:
        blocks.append(_buttons(card.buttons, _block_id("actions", did)))
    if card.footer:
        blocks.append(_context(mrkdwn(card.footer, people=True)))
    if card.links:
        blocks.append(_context(" · ".join(link_text(link.url, link.text) for link in card.links[:10])))
    return cap_blocks([b.to_dict() for b in blocks])


def link_text(url: str, text: str) -> str:
    """A mrkdwn link (`<url|text>`); the URL keeps none of the characters that would end it."""
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")
    return f"<{escape(safe)}|{mrkdwn(text)}>"


def card_text(card: Card) -> str:
    """The notification/fallback text of a card: title and status."""
    return truncate(f"{card.title}: {card.status_line}", FALLBACK_TEXT)


def message_blocks(
    text: str, buttons: Sequence[Button] = (), mentions: Sequence[str] = ()
) -> tuple[str, list[dict[str, Any]]]:
    """A channel message (alert, notice): (fallback text, blocks) with optional buttons."""
    who = " ".join(mention(m) for m in dict.fromkeys(mentions))
    body = (who + " " if who else "") + mrkdwn(text, people=True)
    blocks: list[Block] = [_section(body)]
    if buttons:
        ids = {b.value.split(":", 1)[0] for b in buttons}
        block_id = f"alert:{ids.pop()}" if len(ids) == 1 else None
        blocks.append(_buttons(buttons, block_id))
    return truncate(body, FALLBACK_TEXT), cap_blocks([b.to_dict() for b in blocks])


def cap_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 50 blocks; when cutting, the last two (buttons, footer) are kept."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return blocks[: MAX_BLOCKS - 2] + blocks[-2:]


def thread_text(text: str) -> str:
    """A thread post: escaped, at most ~3000 characters, keeping the tail of long logs."""
    return truncate_tail(mrkdwn(text, people=True), THREAD_TEXT)


def reply_text(text: str) -> str:
    """A command reply (sent as text, no blocks): escaped mrkdwn, user ids as mentions."""
    return truncate(mrkdwn(text, people=True), REPLY_TEXT)
