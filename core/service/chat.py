"""/chat, /search: validation shared by every entry point, quotes, answers, records.

Access (seed queries 2 and 3), limits and price are decided here, before any model sees a
transcript, so nothing inside a transcript can change them. An answer is produced by
``answer`` after the payment is verified and before it is settled (payments' fulfiller for
"chat_query"); ``record_answer`` writes ``chat_sessions`` in the crediting transaction.
``answer_for`` shows a recorded answer again, to its buyer only (when its DM failed).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from core import outbox, refunds
from core.accounts import user_id_for, user_id_of_wallet
from core.chat import answer as backends
from core.chat.answer import AnswerDraft, AnswerUnavailable
from core.chat.prompt import SpaceRef
from core.chat.retrieve import retrieve, search_passages
from core.chat.terms import fts5_expression, terms, tsquery_expression
from core.context import Context
from core.db import (
    Account,
    ChatSession,
    ChatUnlock,
    Invoice,
    PaymentReceipt,
    Space,
    StarPayment,
    TranscriptionPayment,
)
from core.db.upsert import dialect_name
from core.errors import InvalidInput
from core.logging import get_logger
from core.money import canonical_units, chat_price, parse_usdc, to_units
from core.results import Answer, Caller, Granted, Quote, Refused, SearchHit, Source
from core.service.views import space_view
from core.spaces import canonical_url, parse_space

if TYPE_CHECKING:
    from core.payments.fulfil import FunctionFulfiller

RETRIEVE_LIMIT = 24
SEARCH_LIMIT = 10
MAX_SEARCH_CHARS = 200
SEARCH_OWNED_SPACES = 10  # passage search covers the latest purchases (bench.search: p95 in target)
_ANSWER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

log = get_logger("spacescribe.chat")


@dataclass(frozen=True)
class Checked:
    user_id: int
    question: str
    spaces: list[SpaceRef]


def clean_question(text: str) -> str:
    """The question with control characters (NUL, ESC, …) as spaces, invisible formatting
    characters (zero-width spaces, bidi overrides) dropped and whitespace collapsed: what is
    left is what a reader sees, so a question of only such characters is an empty one."""
    kept = (" " if unicodedata.category(c) == "Cc" else c for c in text or "")
    return " ".join("".join(c for c in kept if unicodedata.category(c) != "Cf").split())


def _ref(space: Space) -> SpaceRef:
    return SpaceRef(space.id, space.space_id, space.title, space.space_url)


async def validate(
    session: AsyncSession, ctx: Context, user_id: int | None, question: str, spaces: list[str]
) -> Checked | Refused:
    cfg = ctx.settings.chat
    q = clean_question(question)
    if not q:
        return Refused("empty_question", "Ask a question, e.g. /chat what was decided? <space>")
    if len(q) > cfg.max_question_chars:
        return Refused(
            "question_too_long",
            f"Your question has {len(q)} characters; the limit is {cfg.max_question_chars}.",
        )
    if not spaces:
        return Refused("no_spaces", "Name at least one Space (link or id) to ask about.")
    if len(spaces) > cfg.max_spaces:
        return Refused(
            "too_many_spaces",
            f"One question may name at most {cfg.max_spaces} Spaces; you named {len(spaces)}.",
        )
    ids: list[str] = []
    for raw in spaces:
        try:
            sid = parse_space(raw)
        except InvalidInput as e:
            return Refused(e.code, str(e))
        if sid in ids:
            return Refused("duplicate_spaces", f"Space {sid} is named twice; name each once.")
        ids.append(sid)
    rows = (await session.execute(select(Space).where(Space.space_id.in_(ids)))).scalars()
    by_id = {sp.space_id: sp for sp in rows}
    refs: list[SpaceRef] = []
    for sid in ids:
        sp = by_id.get(sid)
        if sp is None:
            return Refused("unknown_space", f"Space {sid} has not been transcribed here.")
        if sp.status != "completed":
            return Refused(
                "not_completed",
                f"Space {sid} is not transcribed yet (status: {sp.status}); ask once it is.",
            )
        owned = user_id is not None and await session.scalar(
            select(
                exists().where(
                    TranscriptionPayment.user_id == user_id, TranscriptionPayment.space_id == sp.id
                )
            )
        )
        if not owned:
            return Refused(
                "not_owned",
                f"You have not bought the transcript of Space {sid}. Use /transcribe {sid} first.",
            )
        unlocked = await session.scalar(
            select(exists().where(ChatUnlock.user_id == user_id, ChatUnlock.space_id == sp.id))
        )
        if not unlocked:
            return Refused(
                "not_unlocked",
                f"Chat is not unlocked for Space {sid}. Use /unlock {sid} first.",
            )
        refs.append(_ref(sp))
    assert user_id is not None  # owned implies a user
    return Checked(user_id, q, refs)


def _payments() -> Any:
    # imported at call time: the payments core imports service modules itself
    from core.payments import invoices

    return invoices


async def ask(
    ctx: Context, caller: Caller, question: str, spaces: list[str]
) -> Refused | Quote | Granted:
    """Validate, then quote ``chat_price(n)`` through the payments core's invoice.

    When the caller's account credit covers the price, the payments core grants at once
    (no on-chain payment, so no fulfiller step): the answer is produced FIRST, outside any
    transaction, and recorded in the very transaction that spends the credit — a question
    the model cannot answer spends nothing.
    """
    async with ctx.db.session() as s:
        uid = await user_id_for(s, caller)
        checked = await validate(s, ctx, uid, question, spaces)
        if isinstance(checked, Refused):
            return checked
        units = to_units(chat_price(len(checked.spaces), ctx.settings.prices))
        covered = await _payments().credit_balance(s, checked.user_id) >= units
        if not covered:
            return await _invoice(s, ctx, caller, checked, units, {})
    ids = [r.space_id for r in checked.spaces]
    draft = await answer(ctx, checked.user_id, checked.question, ids)
    if isinstance(draft, Refused):
        return draft
    session_id = str(uuid.uuid4())
    async with ctx.db.session() as s:
        # The credit may have been spent while the answer was produced. Under the credit
        # lock the balance cannot change before the invoice spends it, so a session id
        # (which tells the fulfiller "answered from credit") goes only with a Granted; a
        # quote without one is owed its answer when it is paid, by whatever means.
        await _payments().lock_credit(s, checked.user_id)
        if await _payments().credit_balance(s, checked.user_id) < units:
            return await _invoice(s, ctx, caller, checked, units, {})
        result = await _invoice(s, ctx, caller, checked, units, {"session_id": session_id})
        if isinstance(result, Granted):
            inv = (
                await s.execute(
                    select(Invoice).where(
                        Invoice.kind == "chat_query",
                        Invoice.user_id == checked.user_id,
                        Invoice.payload.contains(session_id),
                    )
                )
            ).scalar_one()
            await record_answer(
                s,
                user_id=checked.user_id,
                question=checked.question,
                space_ids=ids,
                draft=draft,
                amount_units=units,
                transaction_hash=None,
                invoice_pk=inv.id,
                session_id=session_id,
            )
            await _tell_answer(s, inv, session_id)
        return result


async def _invoice(
    session: AsyncSession,
    ctx: Context,
    caller: Caller,
    checked: Checked,
    units: int,
    extra: dict[str, Any],
) -> Quote | Granted:
    result: Quote | Granted = await _payments().create_invoice(
        session,
        ctx,
        caller=caller,
        user_id=checked.user_id,
        kind="chat_query",
        space_ids=[r.space_id for r in checked.spaces],
        amount_units=units,
        payload={"question": checked.question, **extra},
    )
    return result


async def _tell_answer(session: AsyncSession, inv: Invoice, session_id: str | None) -> None:
    """Queue the ``chat_answer`` message for a member who asked from Telegram/Discord.
    Without a session id the answer is still owed: it is produced when the message is sent."""
    acc = await session.get(Account, inv.account_id) if inv.account_id else None
    if acc is None:
        return
    payload = json.loads(inv.payload) if inv.payload else {}
    await outbox.add_message(
        session,
        kind="chat_answer",
        platform=acc.platform,
        recipient=acc.platform_user_id,
        payload={"session_id": session_id} if session_id else {"invoice_id": inv.public_id},
        dedupe_key=f"chat_answer:{inv.public_id}",
        origin_chat_id=payload.get("chat_id"),
    )


async def answer(
    ctx: Context, user_id: int, question: str, space_ids: list[str]
) -> AnswerDraft | Refused:
    """The paid answer, produced before settlement: re-checked, retrieved, answered."""
    async with ctx.db.session() as s:
        checked = await validate(s, ctx, user_id, question, space_ids)
        if isinstance(checked, Refused):
            return checked
        hits = await retrieve(s, [r.pk for r in checked.spaces], checked.question, RETRIEVE_LIMIT)
    refs = {r.pk: r for r in checked.spaces}
    try:
        return await backends.answer(ctx, checked.question, hits, refs)
    except AnswerUnavailable:
        return Refused(
            "answer_unavailable",
            "The AI model could not answer right now; you have not been charged. Try again later.",
        )


async def record_answer(
    session: AsyncSession,
    *,
    user_id: int,
    question: str,
    space_ids: list[str],
    draft: AnswerDraft,
    amount_units: int,
    transaction_hash: str | None,
    invoice_pk: int | None = None,
    session_id: str | None = None,
) -> str:
    """Insert the ``chat_sessions`` row exactly per the seed; returns its session_id."""
    sid = session_id or str(uuid.uuid4())
    await session.execute(
        insert(ChatSession).values(
            session_id=sid,
            user_id=user_id,
            space_ids=json.dumps(space_ids),
            question=question,
            answer=draft.answer,
            sources=json.dumps([src.as_json() for src in draft.sources], ensure_ascii=False),
            num_spaces=len(space_ids),
            amount_usdc=canonical_units(amount_units),
            transaction_hash=transaction_hash,
            model=draft.model,
            tokens_used=draft.tokens_used,
            invoice_id=invoice_pk,
        )
    )
    return sid


def draft_to_json(draft: AnswerDraft) -> dict[str, Any]:
    return {
        "answer": draft.answer,
        "sources": [s.as_json() for s in draft.sources],
        "model": draft.model,
        "tokens_used": draft.tokens_used,
    }


def draft_from_json(data: dict[str, Any]) -> AnswerDraft:
    return AnswerDraft(
        answer=str(data["answer"]),
        sources=[
            backends.SourceDraft(
                space_id=s["spaceId"],
                start=float(s["start"]),
                end=float(s["end"]),
                speaker=s.get("speaker"),
                excerpt=s["excerpt"],
                url=s["url"],
            )
            for s in data.get("sources", [])
        ],
        model=str(data["model"]),
        tokens_used=int(data.get("tokens_used") or 0),
    )


async def _fulfil_answer(ctx: Context, req: Any) -> dict[str, Any] | Refused:
    async with ctx.db.session() as s:
        inv = await s.get(Invoice, req.invoice_pk)
        uid = inv.user_id if inv is not None else None
        if uid is None and inv is not None and inv.account_id is None and req.payer:
            # an x402 buyer is their wallet: what it bought is what it may ask about
            uid = await user_id_of_wallet(s, req.payer)
            if uid is None:
                sid = req.space_ids[0]
                return Refused(
                    "not_owned", f"This wallet has not bought the transcript of Space {sid}."
                )
    if uid is None:
        return Refused("not_linked", "Link your wallet before asking about your Spaces.")
    question = str(req.payload.get("question") or "")
    draft = await answer(ctx, int(uid), question, list(req.space_ids))
    if isinstance(draft, Refused):
        return draft
    # the session id is fixed here so the paid HTTP result and the recorded row agree
    return {"session_id": str(uuid.uuid4()), "question": question, **draft_to_json(draft)}


async def _fulfil_record(
    session: AsyncSession,
    ctx: Context,
    req: Any,
    result: dict[str, Any],
    user_id: int,
    transaction_hash: str | None,
) -> None:
    sid = await record_answer(
        session,
        user_id=user_id,
        question=str(result["question"]),
        space_ids=list(req.space_ids),
        draft=draft_from_json(result),
        amount_units=int(req.amount_units),
        transaction_hash=transaction_hash,
        invoice_pk=int(req.invoice_pk),
        session_id=result.get("session_id"),
    )
    # members who asked in Telegram/Discord get the answer delivered (once per invoice)
    inv = await session.get(Invoice, int(req.invoice_pk))
    if inv is not None:
        await _tell_answer(session, inv, sid)


async def _fulfil_owed(session: AsyncSession, ctx: Context, req: Any, user_id: int) -> None:
    inv = await session.get(Invoice, int(req.invoice_pk))
    if inv is None:
        return
    if req.payload.get("session_id") and int(inv.credit_units) >= int(inv.amount_units):
        return  # paid from credit by ask(), which records its answer in this transaction
    await _tell_answer(session, inv, None)
    log.warning("paid question credited without its answer; answer owed", invoice=req.invoice_id)


UNANSWERED = "unanswered_refunded"  # a delivered_answer refusal that is final


async def delivered_answer(
    ctx: Context, payload: dict[str, Any], last_attempt: bool = False
) -> Answer | Refused | None:
    """The answer a ``chat_answer`` message carries. An owed answer (paid, credited without
    one) is produced and recorded now, once per invoice (``chat_sessions.invoice_id`` is
    unique); a Refused means "not now" (the model is down) and the message is retried —
    except on the outbox's ``last_attempt``, or when the question can no longer be answered
    at all: then the payer is refunded (Stars in Stars, USDC as account credit, once) and the
    Refused's code is :data:`UNANSWERED` (do not retry). A refunded question is never
    answered afterwards."""
    if payload.get("session_id"):
        return await answer_of(ctx, str(payload["session_id"]))
    public_id = str(payload.get("invoice_id") or "")
    async with ctx.db.session() as s:
        inv = (
            await s.execute(select(Invoice).where(Invoice.public_id == public_id))
        ).scalar_one_or_none()
        if inv is None or inv.user_id is None or inv.status != "credited":
            return None
        done = await s.scalar(
            select(ChatSession.session_id).where(ChatSession.invoice_id == inv.id)
        )
        tx = await s.scalar(
            select(PaymentReceipt.transaction_hash).where(PaymentReceipt.invoice_id == inv.id)
        )
        in_stars = await s.scalar(  # a Stars purchase records 0 USDC
            select(exists().where(StarPayment.invoice_id == inv.id))
        )
        refunded = await refunds.question_refunded(s, inv)
    if done:
        return await answer_of(ctx, done)
    if refunded:
        return _unanswered()
    data = json.loads(inv.payload) if inv.payload else {}
    ids: list[str] = json.loads(inv.space_ids)
    draft = await answer(ctx, int(inv.user_id), str(data.get("question") or ""), ids)
    if isinstance(draft, Refused):
        if draft.code == "answer_unavailable" and not last_attempt:
            return draft  # the model may be back at the next attempt
        reason = (
            "the AI model was unavailable" if draft.code == "answer_unavailable" else draft.message
        )
        async with ctx.db.session() as s:
            await refunds.settle_unanswered_question(s, ctx.settings, inv.id, reason)
        log.warning("paid question not answered; refunded", invoice=inv.public_id, why=draft.code)
        return _unanswered()
    async with ctx.db.session() as s:
        sid = await record_answer(
            s,
            user_id=int(inv.user_id),
            question=str(data.get("question") or ""),
            space_ids=ids,
            draft=draft,
            amount_units=0 if in_stars else int(inv.amount_units),
            transaction_hash=tx,
            invoice_pk=inv.id,
        )
    return await answer_of(ctx, sid)


def _unanswered() -> Refused:
    return Refused(UNANSWERED, "This paid question could not be answered; it was refunded.")


async def answer_of(ctx: Context, session_id: str) -> Answer | None:
    """A recorded answer as the adapters render it (the ``chat_answer`` message)."""
    async with ctx.db.session() as s:
        row = (
            await s.execute(select(ChatSession).where(ChatSession.session_id == session_id))
        ).scalar_one_or_none()
    return _answer_view(row) if row is not None else None


def valid_answer_id(text: str) -> bool:
    """An answer's id is its ``chat_sessions.session_id``: a lower-case UUID (36 characters,
    so ``answer_<id>`` fits a Telegram start payload and a Discord custom_id)."""
    return isinstance(text, str) and _ANSWER_ID.fullmatch(text) is not None


async def answer_for(ctx: Context, caller: Caller, answer_id: str) -> Answer | Refused:
    """A paid answer again, for the member who paid for it: the way back to an answer whose
    direct message could not be delivered (Telegram deep link, Discord button).

    Only the buyer of the answer's credited invoice gets it (the caller's linked user, as
    for transcripts); an unknown id and someone else's get the same refusal, so ids cannot
    be probed. A malformed id is refused before the database is asked anything.
    """
    if not valid_answer_id(answer_id):
        return Refused(
            "invalid_answer_id",
            "That is not an answer id: it has 36 characters, like "
            "0f8fad5b-d9cb-469f-a165-70867728950e. Use the link or button the bot posted.",
        )
    async with ctx.db.session() as s:
        user_id = await user_id_for(s, caller)
        row = None
        if user_id is not None:
            row = (
                await s.execute(
                    select(ChatSession)
                    .join(Invoice, Invoice.id == ChatSession.invoice_id)
                    .where(
                        ChatSession.session_id == answer_id,
                        Invoice.kind == "chat_query",
                        Invoice.status == "credited",
                        Invoice.user_id == user_id,
                    )
                )
            ).scalar_one_or_none()
    if row is None:
        return Refused(
            "unknown_answer",
            "You have no answer with this id: an answer is shown only to the member who "
            "paid for it.",
        )
    return _answer_view(row)


def _answer_view(row: ChatSession) -> Answer:
    return Answer(
        session_id=row.session_id,
        question=row.question,
        answer=row.answer,
        sources=[
            Source(
                space_id=src["spaceId"],
                start=float(src.get("start") or 0.0),
                end=float(src.get("end") or 0.0),
                speaker=src.get("speaker"),
                excerpt=src["excerpt"],
                url=src.get("url") or canonical_url(src["spaceId"]),
            )
            for src in json.loads(row.sources or "[]")
        ],
        model=row.model or "",
        amount=parse_usdc(row.amount_usdc),
        space_ids=json.loads(row.space_ids),
    )


def fulfiller() -> FunctionFulfiller:
    """Payments' "chat_query" fulfiller: verify → this answer → settle → record (the wiring
    adds it to ``ctx.wiring.fulfillers``)."""
    from core.payments.fulfil import FunctionFulfiller

    return FunctionFulfiller(_fulfil_answer, _fulfil_record, _fulfil_owed)


async def titled(s: AsyncSession, ws: list[str], limit: int = SEARCH_LIMIT) -> list[Space]:
    """Completed Spaces whose title or participants match the terms, most bought first:
    what anyone may find (no transcript text)."""
    if dialect_name(s) == "sqlite":
        ids = text("SELECT rowid FROM spaces_fts WHERE spaces_fts MATCH :q ORDER BY rank LIMIT :k")
        pks = [r[0] for r in (await s.execute(ids, {"q": fts5_expression(ws), "k": 50}))]
        cond: ColumnElement[bool] = Space.id.in_(pks)
    else:
        q = func.to_tsquery("english", tsquery_expression(ws))
        cond = or_(
            func.to_tsvector("english", Space.title).op("@@")(q),
            func.to_tsvector("english", func.coalesce(Space.participants, "")).op("@@")(q),
        )
    rows = await s.execute(
        select(Space)
        .where(cond, Space.status == "completed")
        .order_by(Space.transcription_count.desc(), Space.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def search(ctx: Context, caller: Caller | None, words: str) -> list[SearchHit] | Refused:
    """Titles and participants for everyone (``caller`` None: a visitor of the storefront);
    transcript passages only in owned Spaces."""
    if len(words or "") > MAX_SEARCH_CHARS:
        return Refused("query_too_long", f"Search with at most {MAX_SEARCH_CHARS} characters.")
    ws = terms(words or "")
    if not ws:
        return Refused("empty_query", "Search for some words, e.g. /search bitcoin etf")
    hits: list[SearchHit] = []
    async with ctx.db.session() as s:
        hits += [SearchHit(space_view(sp)) for sp in await titled(s, ws)]
        uid = await user_id_for(s, caller) if caller is not None else None
        if uid is not None:
            # the caller's latest SEARCH_OWNED_SPACES purchases, not every one: the cost of
            # a search is bounded whatever a member has bought (README: Chat, /search)
            owned = (
                (
                    await s.execute(
                        select(Space)
                        .join(TranscriptionPayment, TranscriptionPayment.space_id == Space.id)
                        .where(TranscriptionPayment.user_id == uid, Space.status == "completed")
                        .order_by(TranscriptionPayment.id.desc())
                        .limit(SEARCH_OWNED_SPACES)
                    )
                )
                .scalars()
                .all()
            )
            by_pk = {sp.id: sp for sp in owned}
            passages = await search_passages(s, list(by_pk), ws, SEARCH_LIMIT)
            for h in passages:
                if h.score <= 0:
                    continue
                hits.append(
                    SearchHit(
                        space_view(by_pk[h.space_pk]), backends.excerpt(h.text, ws), start=h.start
                    )
                )
    return hits


async def answers_on(ctx: Context, caller: Caller, space_id: str, limit: int = 5) -> list[Answer]:
    """The caller's latest paid answers over ``space_id`` (a validated id), newest first:
    what the storefront's Space page shows its buyer."""
    async with ctx.db.read() as s:
        uid = await user_id_for(s, caller)
        if uid is None:
            return []
        rows = await s.execute(
            select(ChatSession)
            .where(
                ChatSession.user_id == uid,
                ChatSession.space_ids.contains(json.dumps(space_id), autoescape=True),
            )
            .order_by(ChatSession.id.desc())
            .limit(limit)
        )
        return [_answer_view(r) for r in rows.scalars()]
