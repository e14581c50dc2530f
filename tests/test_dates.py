"""Dates as news writes them: reading them (rag.dates), counting the unreadable ones at
ingest, filtering by date, recency and source (library, CLI, app), and re-reading the
dates of an index written by an earlier version. Hash embedder: fast."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest

import rag
from rag import dates, ui
from rag.cli import main
from rag.store import Filters

BASE = "2025-06-26T12:00:00+00:00"  # when the article was fetched or indexed

FORMS = [
    ("2025-06-25", "2025-06-25"),
    ("2025-06-25T10:00:00+02:00", "2025-06-25"),
    ("2025-06-25T23:30:00-05:00", "2025-06-25"),  # the day as written, not moved to UTC
    ("Wed, 25 Jun 2025 10:00:00 +0200", "2025-06-25"),  # RFC 822 (feeds)
    ("25/06/2025", "2025-06-25"),
    ("25.06.2025", "2025-06-25"),
    ("05/06/2025", "2025-06-05"),  # ambiguous: day first, as French news writes it
    ("06/25/2025", "2025-06-25"),  # 25 cannot be a month
    ("20250625", "2025-06-25"),
    ("25 juin 2025", "2025-06-25"),
    ("1er juin 2025", "2025-06-01"),
    ("Oct 17, 2024", "2024-10-17"),
    ("17 October 2024", "2024-10-17"),
    ("mardi 24 juin 2025 à 18h30", "2025-06-24"),
    ("Publié le 25 juin 2025 à 10h00", "2025-06-25"),
    ("Mis à jour le 25/06/2025 à 12:00", "2025-06-25"),
    ("il y a 2 jours", "2025-06-24"),
    ("yesterday", "2025-06-25"),
    ("hier", "2025-06-25"),
    ("2 days ago", "2025-06-24"),
    ("25. Juni 2025", "2025-06-25"),  # another language dateparser knows
]


@pytest.mark.parametrize("text, expected", FORMS)
def test_every_form_reads_as_its_day(text, expected):
    assert dates.date_key(text, BASE) == expected


@pytest.mark.parametrize("text", ["printemps 2025", "juin 2025", "31/02/2025", "1700-01-01", "dans 3 jours",
                                  "n/a", "", "   ", None])
def test_what_names_no_trustworthy_day_has_no_key(text):
    assert dates.date_key(text, BASE) is None


def test_relative_dates_count_from_the_base_and_are_pinned_when_fetched():
    assert dates.date_key("il y a 2 jours", "2024-01-10T08:00:00Z") == "2024-01-08"
    assert dates.is_relative("il y a 2 jours", BASE) and not dates.is_relative("25 juin 2025", BASE)
    assert dates.pin_relative("il y a 2 jours", BASE) == "2025-06-24 (il y a 2 jours)"
    assert dates.pin_relative("25 juin 2025", BASE) == "25 juin 2025"
    # Read again later, the pinned text still names the same day.
    assert dates.date_key("2025-06-24 (il y a 2 jours)", "2030-01-01T00:00:00Z") == "2025-06-24"
    # A datetime or a POSIX time works as a base too.
    base = datetime(2025, 6, 26, 12, tzinfo=timezone.utc)
    assert dates.date_key("yesterday", base) == dates.date_key("yesterday", base.timestamp()) == "2025-06-25"


def test_a_fetched_page_with_a_relative_date_keeps_the_day_of_its_fetch():
    from rag.fetch import Fetched, page_article

    html = ("<html><head><title>Le port rouvre</title><meta property='article:published_time' content='hier'>"
            "</head><body><article><h1>Le port rouvre</h1><p>" + "Le port de Brest a rouvert lundi. " * 20 +
            "</p></article></body></html>")
    fetched = Fetched("https://news.example/a", "https://news.example/a", 200, "text/html", "utf-8",
                      html.encode(), fetched_at=datetime(2025, 6, 26, 12, tzinfo=timezone.utc).timestamp())
    article = page_article(fetched)
    assert article.date == "2025-06-25 (hier)"


@pytest.mark.parametrize("duration, expected", [
    ("7d", date(2025, 3, 24)), ("2w", date(2025, 3, 17)), ("3m", date(2024, 12, 31)), ("1m", date(2025, 2, 28)),
    ("1y", date(2024, 3, 31)), (" 30D ", date(2025, 3, 1)),
])
def test_recency_durations(duration, expected):
    assert dates.since(duration, date(2025, 3, 31)) == expected


@pytest.mark.parametrize("bad", ["7", "0d", "d7", "7 days", "1.5w", "", "-3d", None, 7])
def test_a_bad_duration_says_what_it_should_look_like(bad):
    with pytest.raises(ValueError, match="must look like 7d, 2w, 3m"):
        dates.since(bad)


def test_filters_take_recency_and_check_their_values():
    today = date(2025, 6, 26)
    assert Filters.make(recent="7d", today=today).date_from == "2025-06-19"
    # The later of the two starts wins.
    assert Filters.make("2025-06-22", recent="7d", today=today).date_from == "2025-06-22"
    assert Filters.make("2025-01-01", recent="7d", today=today).date_from == "2025-06-19"
    assert Filters.coerce({"recent": "7d", "source": "Le Monde"}).sources == ("Le Monde",)
    assert Filters.coerce({"recent": "1y"}).date_from == dates.since("1y").isoformat()
    with pytest.raises(ValueError, match="ends .* before it starts"):
        Filters("2025-06-30", "2025-06-01")
    with pytest.raises(ValueError, match="recent must look like"):
        Filters.coerce({"recent": "soon"})
    with pytest.raises(ValueError, match="sources must be"):
        Filters(sources=("",))


# -- in an index ---------------------------------------------------------------------

TODAY = date.today()
MIXED = {  # id: (date as written, the day it must filter as)
    "iso": ("2025-06-25T10:00:00+02:00", "2025-06-25"),
    "rfc": ("Wed, 25 Jun 2025 10:00:00 +0200", "2025-06-25"),
    "slash": ("25/06/2025", "2025-06-25"),
    "dots": ("25.06.2025", "2025-06-25"),
    "juin": ("25 juin 2025", "2025-06-25"),
    "premier": ("1er juin 2025", "2025-06-01"),
    "oct": ("Oct 17, 2024", "2024-10-17"),
    "mardi": ("mardi 24 juin 2025 à 18h30", "2025-06-24"),
    "ilya": ("il y a 2 jours", (TODAY - timedelta(days=2)).isoformat()),
    "yesterday": ("yesterday", (TODAY - timedelta(days=1)).isoformat()),
    "spring": ("printemps 2025", None),
}
SOURCES = {"iso": "Le Monde", "rfc": "Le Monde", "oct": "Reuters"}


def mixed_articles():
    return [rag.Article(id=i, title=f"Article {i} sur le port de Brest",
                        text=f"Le port de Brest a rouvert ({i}). Une deuxième phrase sur le port.",
                        date=d, source=SOURCES.get(i, "Ouest-France"))
            for i, (d, _) in MIXED.items()]


def found(retriever, **filters) -> set[str]:
    hits = retriever.retrieve("le port de Brest", k=50, filters=filters or None)
    return {h.article_id for h in hits}


def test_every_form_filters_correctly_and_an_unreadable_date_is_reported_not_dropped(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    report = index.add(mixed_articles())
    assert report.undated == 1 and report.undated_examples == ["printemps 2025"]
    assert report.date_summary() == ("1 article has a date we could not read (e.g. 'printemps 2025'); "
                                     "it is kept and found without a date filter")
    assert report.to_dict()["undated"] == 1
    r = index.retriever()
    assert found(r) == set(MIXED)  # no filter: every article, the undated one too
    for art_id, (_, day) in MIXED.items():
        if day:
            assert art_id in found(r, date_from=day, date_to=day), art_id
    assert found(r, date_from="2025-06-01", date_to="2025-06-30") == {"iso", "rfc", "slash", "dots", "juin",
                                                                      "premier", "mardi"}
    assert found(r, date_to="2024-12-31") == {"oct"}
    assert "spring" not in found(r, date_from="1900-01-01")
    assert found(r, recent="7d") == {"ilya", "yesterday"}
    assert found(r, sources=["Le Monde", "Reuters"]) == {"iso", "rfc", "oct"}
    assert found(r, source="Le Monde", date_from="2025-06-25") == {"iso", "rfc"}
    assert index.store.sources()[0] == ("Ouest-France", 8)
    # Added again: reported again (once per ingest), nothing re-embedded.
    again = index.add(mixed_articles())
    assert len(again.unchanged) == len(MIXED) and again.undated == 1
    index.close()


def test_the_report_says_how_many_and_quotes_a_few():
    report = rag.AddReport()
    for d in ["printemps 2025", "bientôt", "printemps 2025", "à venir", "plus tard", "2025-06-25"]:
        report.note_date(rag.Article(id=d, title="t", text="x", date=d))
    assert report.undated == 5
    assert report.undated_examples == ["printemps 2025", "bientôt", "à venir"]
    assert report.date_summary().startswith("5 articles have a date we could not read (e.g. 'printemps 2025', ")
    assert rag.AddReport().date_summary() is None


@pytest.fixture
def mixed_file(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in mixed_articles()),
                    encoding="utf-8")
    return path


def test_cli_index_add_reports_the_unreadable_dates_once(tmp_path, mixed_file, capsys):
    idx = str(tmp_path / "idx")
    assert main(["index", "add", str(mixed_file), "--index", idx, "--embedder", "hash", "--chunk-size", "64",
                 "--chunk-overlap", "8", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("a date we could not read") == 1
    assert "1 article has a date we could not read (e.g. 'printemps 2025')" in err


def test_cli_search_filters_an_index_of_mixed_date_forms(tmp_path, mixed_file, capsys):
    idx = str(tmp_path / "idx")
    assert main(["index", "add", str(mixed_file), "--index", idx, "--embedder", "hash", "--chunk-size", "64",
                 "--chunk-overlap", "8", "-q"]) == 0
    capsys.readouterr()

    def ids(*options):
        assert main(["search", "le port de Brest", "--index", idx, "--k", "50", "--json", *options]) == 0
        return {h["article_id"] for h in json.loads(capsys.readouterr().out)}

    assert ids() == set(MIXED)
    assert ids("--date-from", "2025-06-01", "--date-to", "2025-06-30") == {
        "iso", "rfc", "slash", "dots", "juin", "premier", "mardi"}
    assert ids("--date-from", "2025-06-25", "--date-to", "2025-06-25") == {"iso", "rfc", "slash", "dots", "juin"}
    assert ids("--date-to", "2024-12-31") == {"oct"}
    assert ids("--recent", "7d") == {"ilya", "yesterday"}
    assert ids("--source", "Le Monde", "--source", "Reuters") == {"iso", "rfc", "oct"}
    assert ids("--recent", "7d", "--source", "Le Monde") == set()


@pytest.mark.parametrize("options, message", [
    (["--recent", "7x"], "--recent must look like 7d, 2w, 3m"),
    (["--date-from", "25/06/2025"], "--date-from must be an ISO date"),
    (["--date-from", "2025-06-30", "--date-to", "2025-06-01"], "before it starts"),
])
@pytest.mark.parametrize("command", ["search", "ask"])
def test_cli_bad_filters_fail_with_the_option_named(tmp_path, capsys, command, options, message):
    # Checked before the index is opened: there is none here.
    assert main([command, "le port", "--index", str(tmp_path / "none"), *options]) == 1
    assert message in capsys.readouterr().err


def test_cli_ask_applies_the_filters(tmp_path, mixed_file, capsys):
    idx = str(tmp_path / "idx")
    assert main(["index", "add", str(mixed_file), "--index", idx, "--embedder", "hash", "--chunk-size", "64",
                 "--chunk-overlap", "8", "-q"]) == 0
    capsys.readouterr()
    # Nothing is dated in 2030: the assistant has no passage to read, and says so.
    assert main(["ask", "le port de Brest a-t-il rouvert ?", "--index", idx, "--date-from", "2030-01-01",
                 "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["refused"] and answer["citations"] == [] and answer["related"] == []


# -- an index written by an earlier version -------------------------------------------------


def age_the_store(path, *, added_at: str | None = None):
    """Make the store look written by the earlier parser: no keys for the dates it could not read."""
    db = sqlite3.connect(path / "store.sqlite")
    with db:
        db.execute("UPDATE articles SET date_key = NULL WHERE id IN ('juin', 'premier', 'dots', 'oct', 'ilya', "
                   "'spring')")
        if added_at:
            db.execute("UPDATE articles SET added_at = ?", (added_at,))
        db.execute("UPDATE meta SET value = '1' WHERE key = 'date_parser'")
    db.close()


def keys_of(index) -> dict[str, str | None]:
    return dict(index.store._db.execute("SELECT id, date_key FROM articles"))


def test_an_older_index_has_its_unread_dates_read_on_open(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(mixed_articles())
    gen = index.store.generation
    index.close()
    age_the_store(hash_config.index_dir, added_at=BASE)
    index = rag.Index.open(hash_config.index_dir)
    keys = keys_of(index)
    assert keys["juin"] == "2025-06-25" and keys["premier"] == "2025-06-01" and keys["dots"] == "2025-06-25"
    assert keys["oct"] == "2024-10-17"
    assert keys["ilya"] == "2025-06-24"  # counted from when it was indexed, not from today
    assert keys["spring"] is None and index.store.undated_count() == 1
    assert index.store.dates_current and index.store.generation == gen  # nothing re-embedded or re-chunked
    assert "juin" in found(index.retriever(), date_from="2025-06-25", date_to="2025-06-25")
    index.close()


def test_the_dates_are_not_read_again_while_another_process_writes(hash_config):
    from rag.fsutil import write_lock

    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(mixed_articles())
    index.close()
    age_the_store(hash_config.index_dir)
    with write_lock(hash_config.index_dir):
        index = rag.Index.open(hash_config.index_dir)
        assert keys_of(index)["juin"] is None and not index.store.dates_current
        index.close()
    index = rag.Index.open(hash_config.index_dir)  # the next open does it
    assert keys_of(index)["juin"] == "2025-06-25"
    index.close()


@pytest.mark.parametrize("re_embed", [False, True])
def test_rebuild_reads_the_dates_and_keeps_the_days_relative_ones_named(hash_config, re_embed):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(mixed_articles())
    index.close()
    age_the_store(hash_config.index_dir)
    db = sqlite3.connect(hash_config.index_dir / "store.sqlite")
    with db:  # "il y a 2 jours", read when it was indexed, on 2025-06-26
        db.execute("UPDATE articles SET date_key = '2025-06-24' WHERE id = 'ilya'")
    db.close()
    config = hash_config.with_(chunk_size=48) if re_embed else hash_config
    rebuilt = rag.Index.rebuild(hash_config.index_dir, config)
    keys = keys_of(rebuilt)
    assert keys["juin"] == "2025-06-25" and keys["oct"] == "2024-10-17"
    assert keys["ilya"] == "2025-06-24"
    assert rebuilt.config.chunk_size == (48 if re_embed else 64)
    rebuilt.close()


# -- the app ------------------------------------------------------------------------------


@pytest.fixture
def backend(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(mixed_articles())
    b = ui.Backend(index)
    yield b
    index.close()


def test_app_filters_take_sources_and_recency(backend):
    assert ui.make_filters("", " ", [], "") is None
    flt = ui.make_filters(None, None, ["Le Monde", " "], "7d")
    assert flt.sources == ("Le Monde",) and flt.date_from == (TODAY - timedelta(days=7)).isoformat()
    assert ui.make_filters("", "", "Reuters", None).sources == ("Reuters",)
    with pytest.raises(rag.InputError, match="recent must look like"):
        ui.make_filters("", "", None, "lately")
    assert backend.sources() == ["Ouest-France", "Le Monde", "Reuters"]
    hits = backend.search("le port de Brest", 50, sources=["Le Monde"])
    assert {h.article_id for h in hits} == {"iso", "rfc"}
    hits = backend.search("le port de Brest", 50, recent="7d")
    assert {h.article_id for h in hits} == {"ilya", "yesterday"}
    answer = backend.ask("le port de Brest a-t-il rouvert ?", date_from="2030-01-01")
    assert answer.refused and not answer.citations


def test_app_page_has_the_source_choices_and_reports_unreadable_dates(backend):
    demo = ui.build_app(backend)
    fns = {getattr(f.fn, "__name__", ""): f.fn for f in demo.fns.values()}
    assert fns["source_choices"]()["choices"] == ["Ouest-France", "Le Monde", "Reuters"]
    out = fns["add_pasted"]("Le salon nautique", "Le salon nautique ouvre ses portes.", "au printemps", "Le Télégramme",
                            "", "", progress=lambda *a, **k: None)
    status = out[2]
    assert "1 article has a date we could not read (e.g. &#x27;au printemps&#x27;)" in status or (
        "1 article has a date we could not read (e.g. 'au printemps')" in status)
    assert "Le Télégramme" in fns["source_choices"]()["choices"]


def test_the_api_takes_the_filters_by_name(backend):
    gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is a dev dependency")
    demo = ui.build_app(backend)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, show_error=True)
    try:
        api = gradio_client.Client(demo.local_url, verbose=False, download_files=False, analytics_enabled=False)
        hits = api.predict(query="le port de Brest", k=50, sources=["Le Monde", "Reuters"], api_name="/search")
        assert {h["article_id"] for h in hits} == {"iso", "rfc", "oct"}
        hits = api.predict(query="le port de Brest", k=50, recent="7d", api_name="/search")
        assert {h["article_id"] for h in hits} == {"ilya", "yesterday"}
        r = api.predict(question="le port de Brest a-t-il rouvert ?", date_from="2030-01-01", api_name="/ask")
        assert r["refused"] and r["citations"] == []
        with pytest.raises(Exception, match="recent must look like"):
            api.predict(query="le port", recent="soon", api_name="/search")
    finally:
        demo.close()
