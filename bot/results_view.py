"""Results on demand (/results, the menu's button): who may see them, and sending them."""

from __future__ import annotations

from aiogram.types import BufferedInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.results import chart_png, compute, summary_parts
from storage.models import Member


def may_see_results(app: AppContext, member: Member | None) -> bool:
    """Organisers any time (a preview); everybody else once the results phase has opened."""
    if member is None:
        return False
    if app.is_admin(member.id):
        return True
    return app.timeline.has_started(PhaseKind.RESULTS, app.clock())


async def send_results(message: Message, app: AppContext, session: AsyncSession, lang: str) -> None:
    results = await compute(session, app.consultation)
    png = chart_png(results, app.consultation, lang, app.translator)
    await message.answer_photo(BufferedInputFile(png, filename="results.png"))
    for part in summary_parts(results, app.consultation, lang, app.translator):
        await message.answer(part)
