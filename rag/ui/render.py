"""HTML for the chat and the library: answers, source cards, refusals, timings, status lines.

Everything shown that comes from an article or a user (titles, text, questions,
file names) is HTML-escaped here, then sanitized again by Gradio. The chatbot does
not render Markdown, so article text cannot smuggle links or images in either.
"""

import html
import re
from collections.abc import Callable

from rag.types import AddReport, Answer, Article, Citation, Hit, published_by

#: Longest article text put in a card's "whole article" section (the chat history
#: travels between browser and server at every turn).
MAX_ARTICLE_CHARS_SHOWN = 30_000
#: A related passage (under a refusal) is shown up to this length; the whole article is a click away.
RELATED_CHARS_SHOWN = 320


def add_progress_text(p) -> str:
    """The line under the app's progress bar while files are indexed (an :class:`rag.index.IngestProgress`)."""
    text = "Embedding and indexing"
    if p.total:
        text += f": {p.saved:,} of {p.total:,} articles saved"
    eta = p.eta_seconds
    if eta is not None and p.done < (p.total or 0):
        text += f", about {fmt_duration(eta)} left"
    return text


def fmt_duration(seconds: float) -> str:
    """``40 s``, ``3 min``, ``1 h 20 min``: a time left, rounded as a person would say it."""
    s = max(1, int(seconds + 0.5))
    if s < 60:
        return f"{s} s"
    m = int(s / 60 + 0.5)
    if m < 60:
        return f"{m} min"
    return f"{m // 60} h {m % 60:02d} min"


_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
}
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?")


def human_date(value: str | None, language: str = "en") -> str:
    """An ISO date as people write it: ``10 Aug 2025`` (English) or ``10 août 2025``, ``1er mars 2025``
    (French). Anything that is not an ISO date is returned as it is."""
    value = value or ""
    m = _ISO_DAY.fullmatch(value.strip())
    if not m:
        return value
    year, month, day = (int(x) for x in m.groups())
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return value
    lang = "fr" if language == "fr" else "en"
    day_text = "1er" if lang == "fr" and day == 1 else str(day)
    return f"{day_text} {_MONTHS[lang][month - 1]} {year}"


def source_anchor(key: str, n: int | str) -> str:
    """The id of source card ``n`` of the answer ``key`` (unique in the page, so [n] can link to it:
    :data:`rag.ui.layout.LINK_MARKERS`)."""
    return f"rag-src-{key}-{n}"


def esc(text: str | None) -> str:
    """Text for an HTML element or attribute: every markup character escaped."""
    return html.escape(text or "", quote=True)


def render_question(question: str) -> str:
    return esc(question)


def render_answer(answer: Answer) -> str:
    """The answer bubble: the text with its [n] markers; a refusal carries a visible label; a
    follow-up that was rewritten says what was searched. (The page links each [n] to its card in
    the browser: the bubble stays text, for the chat's copy button.)"""
    searched = ""
    if answer.standalone_question and answer.standalone_question != answer.question:
        searched = f"<div class='rag-searched'>Searched for: {esc(answer.standalone_question)}</div>"
    if answer.refused:
        return (f"{searched}<div class='rag-refused'><span class='rag-badge'>Not in the articles</span> "
                f"{esc(answer.text)}</div>")
    return searched + esc(answer.text)


def render_first_token(seconds: float) -> str:
    """Under a language model's answer while it is written: how long the first word took."""
    return f"<div class='rag-timings'>first token after {seconds:.1f} s</div>"


def render_error(message: str) -> str:
    return f"<div class='rag-error'><span class='rag-badge'>Error</span> {esc(message)}</div>"


def render_sources(answer: Answer, get_article: Callable[[str], Article | None], *, show_timings: bool,
                   key: str | None = None) -> str:
    """The sources under an answer: a card per citation (or related passage), notice, timings.
    With ``key``, citation card n has the id ``source_anchor(key, n)``; dates are written in the
    answer's language."""
    lang = answer.language
    parts = []
    if answer.notice:
        parts.append(f"<div class='rag-notice'>⚠ {esc(answer.notice)}</div>")
    if answer.refused and answer.citations:
        # The article says the fact is not known: the sentence that says so.
        parts.append("<div class='rag-label'>What the article says</div>")
        parts.extend(_citation_card(c, get_article(c.article_id), lang) for c in answer.citations)
    elif answer.refused:
        if answer.related:
            parts.append("<div class='rag-label'>Closest passages (they do not answer the question)</div>")
            parts.extend(_related_card(h, get_article(h.article_id), lang) for h in answer.related)
    elif answer.citations:
        parts.append("<div class='rag-label'>Sources</div>")
        parts.extend(_citation_card(c, get_article(c.article_id), lang, key) for c in answer.citations)
    if show_timings and answer.timings_ms:
        parts.append(render_timings(answer))
    if not parts:
        return ""
    kind = "rag-sources rag-related" if answer.refused else "rag-sources"
    return f"<div class='{kind}'>{''.join(parts)}</div>"


def render_timings(answer: Answer) -> str:
    t = answer.timings_ms
    stages = " · ".join(f"{name} {t[name]:.0f} ms" for name in ("rewrite", "retrieve", "answer", "verify")
                        if name in t)
    if "first_token" in t:  # a language model answered: how long it made the reader wait, and its pace
        stages += f" · first token {t['first_token']:.0f} ms"
        gen_s = (t.get("answer", 0.0) - t["first_token"]) / 1000
        if answer.generated_tokens > 1 and gen_s > 0:
            stages += f" · {(answer.generated_tokens - 1) / gen_s:.1f} tokens/s"
    return (f"<div class='rag-timings'>{esc(stages)} · <b>total {t.get('total', 0):.0f} ms</b> · "
            f"{esc(answer.answerer)} · confidence {answer.confidence:.2f}</div>")


def _citation_card(c: Citation, article: Article | None, lang: str = "en", key: str | None = None) -> str:
    head = _card_head(str(c.n), c.title, human_date(c.date, lang), c.source, c.url)
    card_id = f" id='{source_anchor(key, c.n)}'" if key else ""
    if c.also_published_by:
        head += f"<div class='rag-meta rag-also'>Also published by {esc(published_by(c.also_published_by))}</div>"
    if article is None or article.text[c.start:c.end] != c.quote:
        body = f"<blockquote class='rag-para'><mark>{esc(c.quote)}</mark></blockquote>"
        return f"<div class='rag-card'{card_id}>{head}{body}</div>"
    lo, hi = _paragraph_bounds(article.text, c.start, c.end)
    body = f"<blockquote class='rag-para'>{_marked(article.text, lo, hi, c.start, c.end)}</blockquote>"
    return f"<div class='rag-card'{card_id}>{head}{body}{_whole_article(article, c.start, c.end)}</div>"


def _related_card(h: Hit, article: Article | None, lang: str = "en") -> str:
    head = _card_head("~", h.title, human_date(h.date, lang), h.source, h.url)
    body = f"<blockquote class='rag-para'>{esc(_shorten(h.text, RELATED_CHARS_SHOWN))}</blockquote>"
    whole = _whole_article(article, h.start, h.end, mark=False) if article else ""
    return f"<div class='rag-card rag-card-related'>{head}{body}{whole}</div>"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + " …"


def _card_head(n: str, title: str, date: str | None, source: str | None, url: str | None) -> str:
    meta = [esc(x) for x in (date, source) if x]
    if url and re.match(r"https?://", url, re.IGNORECASE):
        meta.append(f"<a href='{esc(url)}' target='_blank' rel='noopener noreferrer nofollow'>link</a>")
    meta_html = f"<div class='rag-meta'>{' · '.join(meta)}</div>" if meta else ""
    return (f"<div class='rag-card-head'><span class='rag-n'>{esc(n)}</span>"
            f"<span class='rag-title'>{esc(title)}</span></div>{meta_html}")


def _paragraph_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return lo, len(text) if hi < 0 else hi


def _marked(text: str, lo: int, hi: int, start: int, end: int) -> str:
    """``text[lo:hi]`` escaped, with its overlap with ``[start, end)`` in ``<mark>``."""
    s, e = max(lo, min(start, hi)), max(lo, min(end, hi))
    if s >= e:
        return esc(text[lo:hi])
    return f"{esc(text[lo:s])}<mark>{esc(text[s:e])}</mark>{esc(text[e:hi])}"


def _whole_article(article: Article, start: int, end: int, *, mark: bool = True) -> str:
    text = article.text
    cut = len(text) > MAX_ARTICLE_CHARS_SHOWN
    shown = text[:MAX_ARTICLE_CHARS_SHOWN] if cut else text
    paras, pos = [], 0
    for line in shown.split("\n"):
        lo, hi = pos, pos + len(line)
        pos = hi + 1
        if line.strip():
            inner = _marked(shown, lo, hi, start, end) if mark else esc(line)
            paras.append(f"<p>{inner}</p>")
    if cut:
        paras.append(f"<p class='rag-meta'>… the article goes on ({len(text):,} characters in all).</p>")
    return f"<details><summary>Whole article</summary><div class='rag-article'>{''.join(paras)}</div></details>"


def render_status(message: str, *, ok: bool) -> str:
    cls = "rag-status-ok" if ok else "rag-status-error"
    return f"<div class='rag-status {cls}'>{esc(message)}</div>"


def describe_report(report: AddReport, what: str = "") -> str:
    parts = []
    if report.added:
        parts.append(f"added {len(report.added)} article(s)")
    if report.updated:
        parts.append(f"updated {len(report.updated)}")
    if report.unchanged:
        parts.append(f"{len(report.unchanged)} already indexed, unchanged")
    done = ", ".join(parts) or "nothing to add"
    dates = report.date_summary()
    return (f"{what}{done} ({report.chunks_added} chunks embedded in {report.seconds:.1f} s)."
            + (f" {dates[0].upper()}{dates[1:]}." if dates else ""))
