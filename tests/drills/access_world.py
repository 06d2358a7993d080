"""The world of the access drill: Spaces, five people in five roles, and planted markers.

Roles, pinned to the code's access rules (the seed's queries 2 and 3 as
``core.service.catalog.owns`` and ``core.service.chat.validate``):

- **owner**: a verified ``transcription_payments`` row for Space A (completed, indexed, with
  its ``transcript.md``): may receive A's transcript and see A's passages (search excerpts);
  has no ``chat_unlocks`` row, so may not chat. Holds an open ``chat_unlock`` invoice for A.
- **payer**: paid, but for something that is not ready: a ``transcription_payments`` row for
  Space P, still ``processing``. Owns P (``/myspaces`` lists it, the transcript is "not ready")
  and nothing of A or W. Holds an open transcription invoice for W and account credit.
- **unlocked**: owner of A *and* a ``chat_unlocks`` row for A: may also ask about A. Holds an
  open ``chat_query`` invoice (its question is on the pay page) and a paid, recorded answer
  (its credited invoice and ``chat_sessions`` row): only they may see it again, by Telegram's
  ``/start answer_<id>`` or Discord's "Show my answer" button.
- **non_owner**: an account with a linked wallet and no purchase. Holds an open transcription
  invoice for A.
- **admin**: in ``telegram.admin_ids`` and ``discord.admin_ids``; no purchase. Admins see
  revenue, and nothing more of anyone's transcripts.

A fifth, silent user (the whale) bought Space W for an odd amount, so revenue totals carry a
recognisable tail, and nobody in the matrix may ever see W's transcript or passages.

Everyone has a Telegram and a Discord account linked to their own funded wallet on anvil.
Invoice pages (``/pay/{id}``) and wallet-link pages (``/link/{token}``) are bearer links of
144 and 192 bits handed only to their owner, so in the matrix each role opens its own, and
an unknown id; a page must show nothing of anybody else.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from eth_account.signers.local import LocalAccount
from sqlalchemy import insert, update

from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.context import Context
from core.db import ChatSession, ChatUnlock, Invoice, Space, SpaceEnrichment, TranscriptionPayment
from core.enrich.model import Chapter, Enrichment, NotableQuote, Takeaway
from core.payments.account_credit import add_credit
from core.payments.invoices import insert_invoice
from core.results import Caller, Quote
from core.service import chat, purchases
from core.service import wallet as wallet_service
from core.web_sessions import open_session
from tests.chat.helpers import add_space, space_id_for
from tests.stand_ins.chain import Chain

ROLES = ("owner", "payer", "unlocked", "non_owner", "admin")
TG_IDS = {r: 8123456701 + i for i, r in enumerate(ROLES)}
DC_IDS = {r: 3333333333333301 + i for i, r in enumerate(ROLES)}
SENTINEL_TG = 8123456799  # closes each Telegram cell (its /help reply marks the boundary)

# Planted content, each a string no response may carry to a role not entitled to it.
TRANSCRIPT_A = "zqxtranscriptalpha"  # only in A's transcript.md
PASSAGE_A = "vexquillion"  # in A's passages (search excerpts, chat answers) and transcript
TRANSCRIPT_W = "zqxtranscriptwhale"
PASSAGE_W = "quorbinthal"
REVENUE = "9246 USDC"  # the tail of every revenue total that holds the whale's 13.579246
WHALE_AMOUNT = "13.579246"
CREDIT = "014159 USDC"  # the payer's account credit (an overpayment), 0.014159 USDC
CREDIT_UNITS = 14_159
ASKED = "zqxquestionunlocked"  # the paid, recorded answer of the unlocked member
ANSWERED = "zqxanswerunlocked"
INVOICE_QUESTION = "zqxinvoicequestion"  # the unlocked member's open chat_query invoice
QUESTION = "what was agreed about the budget?"  # matches A's passage, not W's
# the enrichment: takeaways and quotes are sold with the transcript; chapter titles are the
# free teaser everybody sees (popular, search, quotes, pay page, GET /api/spaces/<id>)
TAKEAWAY_A, QUOTE_A, CHAPTER_A = "zqxtakeawayalpha", "zqxquotealpha", "Zqxchapteralpha"
TAKEAWAY_W, QUOTE_W, CHAPTER_W = "zqxtakeawaywhale", "zqxquotewhale", "Zqxchapterwhale"

SEGMENTS_A: list[dict[str, Any]] = [
    {"start": 1.0, "end": 5.0, "speaker": "alice", "text": "Welcome to the alpha weekly."},
    {
        "start": 6.0,
        "end": 12.0,
        "speaker": "bob",
        "text": f"We agreed the {PASSAGE_A} budget is final.",
    },
]
SEGMENTS_W: list[dict[str, Any]] = [
    {"start": 1.0, "end": 6.0, "speaker": "wes", "text": f"The {PASSAGE_W} reserve stays put."},
]


@dataclass
class Person:
    role: str
    wallet: LocalAccount
    user_id: int = 0
    invoice: str = ""  # public id of the person's open invoice
    link_token: str = ""  # their one-time wallet-link token
    web_token: str = ""  # their storefront session (signed in with their wallet)
    csrf: str = ""  # that session's CSRF token

    @property
    def tg(self) -> int:
        return TG_IDS[self.role]

    @property
    def dc(self) -> int:
        return DC_IDS[self.role]

    def caller(self, platform: str = "telegram") -> Caller:
        uid = self.tg if platform == "telegram" else self.dc
        return Caller(platform, str(uid), chat_id=str(uid))


@dataclass
class World:
    a: str  # Space ids
    p: str
    w: str
    people: dict[str, Person]
    whale_wallet: str
    answer_id: str  # chat_sessions.session_id of the unlocked member's paid answer
    markers: dict[str, str] = field(default_factory=dict)  # name → planted string
    entitled: dict[str, set[str]] = field(default_factory=dict)  # role → marker names

    def owned(self, role: str) -> set[str]:
        """The Spaces whose transcript the role bought: what /myspaces and autocomplete list."""
        return {self.a} if role in ("owner", "unlocked") else {self.p} if role == "payer" else set()

    def forbidden(self, role: str) -> dict[str, str]:
        return {n: v for n, v in self.markers.items() if n not in self.entitled[role]}

    def leaks(self, role: str, text: str) -> list[str]:
        low = text.lower()
        return sorted(n for n, v in self.forbidden(role).items() if v.lower() in low)


async def _write_transcript(
    ctx: Context, sid: str, title: str, marker: str, segments: list[dict[str, Any]]
) -> None:
    lines = [f"# {title}", "", f"Recording note: {marker}", ""]
    lines += [f"[00:00:{int(s['start']):02d}] {s['speaker']}: {s['text']}" for s in segments]
    path = ctx.spaces_dir / sid / "transcript.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


async def _enrich(ctx: Context, pk: int, takeaway: str, quote: str, chapter: str) -> None:
    e = Enrichment(
        "openai",
        "gpt-4o-mini",
        [Takeaway(f"They settled the {takeaway} plan.", 6.0)],
        [Chapter(chapter, 0.0, 12.0)],
        [NotableQuote("bob", 6.0, f"the {quote} budget is final")],
    )
    async with ctx.db.session() as s:
        await s.execute(
            insert(SpaceEnrichment).values(
                space_id=pk, status="completed", method=e.method, model=e.model,
                data=json.dumps(e.to_json()), tokens_used=1000, attempts=1,
            )
        )  # fmt: skip
        await s.execute(
            update(Space).where(Space.id == pk).values(chapter_titles=json.dumps([chapter]))
        )


async def _person(ctx: Context, chain: Chain, role: str) -> Person:
    p = Person(role, chain.new_funded_account())
    async with ctx.db.session() as s:
        user = await get_or_create_user(s, p.wallet.address)
        p.user_id = int(user.id)
        for platform in ("telegram", "discord"):
            acc = await get_or_create_account(s, p.caller(platform))
            await link_account(s, acc.id, user.id)
    return p


async def build_world(ctx: Context, chain: Chain) -> World:
    """Spaces A (completed), P (processing), W (completed, the whale's); five people."""
    pk_a = await add_space(ctx, 1, SEGMENTS_A, title="Alpha weekly", participants=["alice", "bob"])
    pk_p = await add_space(ctx, 2, [], title="Pending panel", status="processing")
    pk_w = await add_space(ctx, 3, SEGMENTS_W, title="Whale talk", participants=["wes"])
    a, p, w = space_id_for(1), space_id_for(2), space_id_for(3)
    await _write_transcript(ctx, a, "Alpha weekly", TRANSCRIPT_A, SEGMENTS_A)
    await _write_transcript(ctx, w, "Whale talk", TRANSCRIPT_W, SEGMENTS_W)
    await _enrich(ctx, pk_a, TAKEAWAY_A, QUOTE_A, CHAPTER_A)
    await _enrich(ctx, pk_w, TAKEAWAY_W, QUOTE_W, CHAPTER_W)
    people = {r: await _person(ctx, chain, r) for r in ROLES}
    whale = chain.new_funded_account().address.lower()

    def paid(table: type, uid: int, pk: int, amount: str) -> object:
        return insert(table).values(
            user_id=uid, space_id=pk, amount_usdc=amount, payment_verified=True
        )

    answer_id = str(uuid.uuid4())
    async with ctx.db.session() as s:
        whale_user = await get_or_create_user(s, whale)
        await s.execute(paid(TranscriptionPayment, int(whale_user.id), pk_w, WHALE_AMOUNT))
        await s.execute(paid(TranscriptionPayment, people["owner"].user_id, pk_a, "0.2"))
        await s.execute(paid(TranscriptionPayment, people["unlocked"].user_id, pk_a, "0.2"))
        await s.execute(paid(ChatUnlock, people["unlocked"].user_id, pk_a, "0.5"))
        await s.execute(paid(TranscriptionPayment, people["payer"].user_id, pk_p, "0.2"))
        asked = await insert_invoice(
            s,
            ctx,
            kind="chat_query",
            account_id=(await get_or_create_account(s, people["unlocked"].caller("discord"))).id,
            user_id=people["unlocked"].user_id,
            space_ids=[a],
            amount_units=1_000_000,
            payload={"question": f"{ASKED}?"},
        )
        await s.execute(update(Invoice).where(Invoice.id == asked.id).values(status="credited"))
        await s.execute(
            insert(ChatSession).values(
                session_id=answer_id,
                invoice_id=asked.id,
                user_id=people["unlocked"].user_id,
                space_ids=json.dumps([a]),
                question=f"{ASKED}?",
                answer=ANSWERED,
                sources="[]",
                num_spaces=1,
                amount_usdc="1.0",
            )
        )
    # each person's open invoice, made by the same use cases the commands call
    quotes = {
        "owner": await purchases.request_unlock(ctx, people["owner"].caller(), a),
        "unlocked": await chat.ask(
            ctx, people["unlocked"].caller(), f"{INVOICE_QUESTION}: {QUESTION}", [a]
        ),
        "payer": await purchases.request_transcription(ctx, people["payer"].caller(), w),
        "non_owner": await purchases.request_transcription(ctx, people["non_owner"].caller(), a),
        "admin": await purchases.request_transcription(ctx, people["admin"].caller(), a),
    }
    for role, q in quotes.items():
        assert isinstance(q, Quote), (role, q)
        people[role].invoice = q.invoice_id
        info = await wallet_service.wallet(ctx, people[role].caller())
        people[role].link_token = urlsplit(info.link_url).path.rsplit("/", 1)[1]
    async with ctx.db.session() as s:  # after the payer's invoice, so no quote reserves it
        await add_credit(s, people["payer"].user_id, CREDIT_UNITS, "overpaid", "drill:payer")
    for person in people.values():  # each signed in on the storefront with their wallet
        person.web_token, buyer = await open_session(ctx, person.wallet.address.lower())
        person.csrf = buyer.csrf_token
    world = World(a, p, w, people, whale, answer_id)
    _plant(world)
    return world


def _plant(w: World) -> None:
    m = {
        "transcript A": TRANSCRIPT_A,
        "passage A": PASSAGE_A,
        "transcript W": TRANSCRIPT_W,
        "passage W": PASSAGE_W,
        "revenue": REVENUE,
        "credit of payer": CREDIT,
        "question of unlocked": ASKED,
        "answer to unlocked": ANSWERED,
        "invoice question of unlocked": INVOICE_QUESTION,
        "wallet of whale": w.whale_wallet.removeprefix("0x"),
        "takeaway A": TAKEAWAY_A,
        "quote A": QUOTE_A,
        "takeaway W": TAKEAWAY_W,
        "quote W": QUOTE_W,
    }
    for role, p in w.people.items():
        m[f"wallet of {role}"] = p.wallet.address.lower().removeprefix("0x")
        m[f"invoice of {role}"] = p.invoice
        m[f"link of {role}"] = p.link_token
        m[f"telegram id of {role}"] = str(p.tg)
        m[f"discord id of {role}"] = str(p.dc)
    w.markers = m
    own = {
        r: {f"{k} of {r}" for k in ("wallet", "invoice", "link", "telegram id", "discord id")}
        for r in ROLES
    }
    own["owner"] |= {"transcript A", "passage A", "takeaway A", "quote A"}
    own["unlocked"] |= {
        "transcript A",
        "passage A",
        "takeaway A",
        "quote A",
        "question of unlocked",
        "answer to unlocked",
        "invoice question of unlocked",
    }
    own["payer"] |= {"credit of payer"}
    own["admin"] |= {"revenue"}
    w.entitled = own
