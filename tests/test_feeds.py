"""`rag feeds` and rag.feeds: following RSS/Atom feeds, against a local site on 127.0.0.1.

Every test uses the hash embedder and counts what it embeds: a refresh that finds
nothing new must embed nothing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from news_server import NewsServer, article_html, atom, rss
from rag.cli import main
from rag.errors import ConfigError, FeedError, IndexLockedError
from rag.fetch import url_id

PAGES = {
    "/monde/sommet.html": ("Sommet européen sur l'énergie", [
        "Les dirigeants européens se sont retrouvés jeudi à Bruxelles pour un sommet consacré aux prix de l'énergie. "
        "Ils doivent s'accorder sur un mécanisme commun d'achat de gaz avant l'hiver.",
        "La présidente de la Commission a proposé un plafonnement temporaire des prix, que plusieurs pays du Nord "
        "jugent risqué pour la sécurité d'approvisionnement.",
        "Une déclaration finale est attendue vendredi en fin de matinée, après une nuit de négociations."]),
    "/france/greve.html": ("Grève dans les transports franciliens", [
        "Le trafic sera très perturbé lundi sur les lignes de métro et de RER, à l'appel de quatre syndicats "
        "qui réclament des hausses de salaires et des embauches.",
        "La direction de la régie prévoit un train sur trois aux heures de pointe et conseille le télétravail "
        "à ceux qui le peuvent.",
        "Une réunion de conciliation doit se tenir mardi au ministère des transports."]),
    "/sport/marathon.html": ("Record battu au marathon de Berlin", [
        "Le vainqueur a couvert les 42,195 kilomètres en deux heures et une minute, améliorant de vingt secondes "
        "la meilleure marque mondiale établie sur le même parcours.",
        "Les conditions étaient idéales, avec une température de douze degrés au départ et un vent faible.",
        "Chez les femmes, la course a été remportée au sprint après une bataille tactique de plus de deux heures."]),
}


def page(path: str, extra: str | None = None) -> str:
    title, paras = PAGES[path]
    return article_html(title, paras + ([extra] if extra else []))  # no date: the feed's fills in


def rss_items(site, paths, description="résumé"):
    return [{"title": PAGES[p][0], "link": site.url(p), "guid": site.url(p),
             "pubDate": f"Thu, 0{i + 1} Sep 2025 08:00:00 GMT", "description": description}
            for i, p in enumerate(paths)]


@pytest.fixture
def site():
    with NewsServer() as s:
        for path in PAGES:
            s.route(path, page(path), etag=f'"{path}-1"')
        s.route("/rss.xml", rss("Le Journal — À la une", rss_items(s, ["/monde/sommet.html", "/france/greve.html"])),
                content_type="application/rss+xml; charset=utf-8", etag='"rss-1"')
        s.route("/atom.xml", atom("Le Journal — Sport", [
            {"title": PAGES["/sport/marathon.html"][0], "href": "sport/marathon.html",  # relative to the feed
             "updated": "2025-09-28T10:15:00Z"}]), content_type="application/atom+xml")
        s.route("/broken.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>Cassé</title><item><ti',
                content_type="application/rss+xml")
        s.route("/accueil.html", '<!doctype html><html><head><title>Le Journal</title>'
                '<link rel="alternate" type="application/rss+xml" title="À la une" href="/rss.xml"></head>'
                "<body><p>Bienvenue</p></body></html>")
        yield s


@pytest.fixture
def embedded(monkeypatch):
    """Texts the hash embedder embeds, per call (passages and sentences alike)."""
    from rag.embedding.hashing import HashEmbedder

    calls: list[int] = []
    original = HashEmbedder.embed_batch

    def counting(self, texts, *, kind):
        calls.append(len(texts))
        return original(self, texts, kind=kind)

    monkeypatch.setattr(HashEmbedder, "embed_batch", counting)
    return calls


@pytest.fixture
def idx(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDER", "hash")
    return str(tmp_path / "idx")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rows(capsys, idx) -> dict[str, dict]:
    assert main(["index", "list", "--index", idx, "--json"]) == 0
    return {r["id"]: r for r in json.loads(capsys.readouterr().out)}


def test_add_reads_the_feed_and_a_second_refresh_embeds_nothing(site, idx, capsys, embedded):
    code, out, err = run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)
    assert code == 0, err
    assert f"following {site.url('/rss.xml')} (Le Journal — À la une)" in out
    assert "2 new, 0 updated, 0 unchanged, 0 failed" in out
    articles = rows(capsys, idx)
    sommet = articles[url_id(site.url("/monde/sommet.html"))]
    assert sommet["title"] == "Sommet européen sur l'énergie" and sommet["url"] == site.url("/monde/sommet.html")
    assert sommet["date"] == "2025-09-01T08:00:00+00:00"  # the page has none: the feed's
    assert sommet["source"] == "Le Journal de Test"
    texts_embedded = sum(embedded)
    assert texts_embedded > 0

    # The feed answers 304: not parsed, no page fetched, nothing embedded.
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx)
    assert code == 0 and "not modified since the last read" in out
    assert "0 new, 0 updated, 0 unchanged, 0 failed (0 chunks embedded)" in out
    assert sum(embedded) == texts_embedded
    assert site.hits("/monde/sommet.html") == 1
    assert site.last_headers("/rss.xml")["If-None-Match"] == '"rss-1"'


def test_a_feed_without_validators_is_parsed_but_known_entries_are_not_fetched(site, idx, capsys, embedded):
    site.routes["/rss.xml"].etag = None
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)[0] == 0
    before = sum(embedded)
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx, "--json")
    report = json.loads(out)
    assert code == 0 and report["feeds"][0]["status"] == "read" and report["feeds"][0]["known"] == 2
    assert report["chunks_added"] == 0 and sum(embedded) == before
    assert site.hits("/monde/sommet.html") == site.hits("/france/greve.html") == 1


def test_changed_entries_are_fetched_conditionally_and_replace_their_article(site, idx, capsys, embedded):
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)[0] == 0
    before = sum(embedded)
    # The feed changes (new summaries), the pages do not: each answers 304.
    site.route("/rss.xml", rss("Le Journal — À la une", rss_items(site, ["/monde/sommet.html", "/france/greve.html"],
                                                                   description="mis à jour")),
               content_type="application/rss+xml", etag='"rss-2"')
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx, "--json")
    feed = json.loads(out)["feeds"][0]
    assert code == 0 and feed["unchanged"] == 2 and feed["added"] == feed["updated"] == []
    assert sum(embedded) == before
    assert site.last_headers("/monde/sommet.html")["If-None-Match"] == '"/monde/sommet.html-1"'

    # Now one page changes too: its article is replaced (same id), the other is left alone.
    site.route("/monde/sommet.html", page("/monde/sommet.html", "Mise à jour : un accord a été trouvé à l'aube."),
               etag='"/monde/sommet.html-2"')
    site.route("/rss.xml", rss("Le Journal — À la une", rss_items(site, ["/monde/sommet.html", "/france/greve.html"],
                                                                   description="accord")),
               content_type="application/rss+xml", etag='"rss-3"')
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx, "--json")
    feed = json.loads(out)["feeds"][0]
    assert feed["updated"] == [url_id(site.url("/monde/sommet.html"))] and feed["unchanged"] == 1
    assert sum(embedded) > before
    articles = rows(capsys, idx)
    assert len(articles) == 2
    from rag.index import Index

    with Index.open(idx) as index:
        assert "un accord a été trouvé" in index.get_article(url_id(site.url("/monde/sommet.html"))).text


def test_a_page_whose_body_did_not_change_is_not_parsed_or_embedded(site, idx, capsys, embedded):
    for path in PAGES:  # no validators on the pages: only the body checksum tells
        site.routes[path].etag = None
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)[0] == 0
    before = sum(embedded)
    site.route("/rss.xml", rss("Le Journal — À la une", rss_items(site, ["/monde/sommet.html", "/france/greve.html"],
                                                                   description="autre")),
               content_type="application/rss+xml")
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx, "--json")
    feed = json.loads(out)["feeds"][0]
    assert feed["unchanged"] == 2 and feed["chunks_added"] == 0 and sum(embedded) == before
    assert site.hits("/monde/sommet.html") == 2


def test_atom_relative_links_and_several_feeds(site, idx, capsys):
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx, "--no-refresh")[0] == 0
    assert run(capsys, "feeds", "add", site.url("/atom.xml"), "--index", idx, "--no-refresh")[0] == 0
    assert rows(capsys, idx) == {}  # --no-refresh: only followed
    code, out, _ = run(capsys, "feeds", "refresh", "--index", idx)
    assert code == 0 and "2 feed(s): 3 new, 0 updated, 0 unchanged, 0 failed" in out
    marathon = rows(capsys, idx)[url_id(site.url("/sport/marathon.html"))]
    assert marathon["date"] == "2025-09-28T10:15:00+00:00"


def test_a_malformed_feed_is_recorded_and_the_others_are_still_read(site, idx, capsys):
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx, "--no-refresh")[0] == 0
    # Following it checks it: a malformed feed is refused at once...
    code, _, err = run(capsys, "feeds", "add", site.url("/broken.xml"), "--index", idx)
    assert code == 1 and "malformed feed" in err and "line 1" in err
    # ...and one that breaks later is recorded as that feed's error at each refresh.
    site.route("/later.xml", rss("Bientôt cassé", []), content_type="application/rss+xml")
    assert run(capsys, "feeds", "add", site.url("/later.xml"), "--index", idx, "--no-refresh")[0] == 0
    site.routes["/later.xml"] = site.routes["/broken.xml"]
    site.route("/gone.xml", rss("Disparu", []), content_type="application/rss+xml")
    assert run(capsys, "feeds", "add", site.url("/gone.xml"), "--index", idx, "--no-refresh")[0] == 0
    del site.routes["/gone.xml"]

    code, out, err = run(capsys, "feeds", "refresh", "--index", idx)
    assert code == 1
    assert "2 new" in out and "2 feed(s) could not be read" in out
    assert f"failed   {site.url('/later.xml')}: malformed feed" in err
    assert f"failed   {site.url('/gone.xml')}: HTTP 404 Not Found" in err
    code, out, _ = run(capsys, "feeds", "list", "--index", idx, "--json")
    feeds = {f["url"]: f for f in json.loads(out)}
    assert feeds[site.url("/rss.xml")]["last_error"] is None and feeds[site.url("/rss.xml")]["articles"] == 2
    later = feeds[site.url("/later.xml")]
    assert "malformed feed" in later["last_error"] and later["last_ok"] is None and later["last_checked"]
    code, out, _ = run(capsys, "feeds", "list", "--index", idx)
    assert "error: HTTP 404 Not Found" in out and "last success never" in out


def test_bad_entries_are_reported_retried_a_few_times_and_the_rest_indexed(site, idx, capsys, embedded):
    site.route("/rapport.pdf", b"%PDF-1.7", content_type="application/pdf")
    items = rss_items(site, ["/monde/sommet.html"]) + [
        {"title": "Disparu", "link": site.url("/disparu.html")},
        {"title": "Un PDF", "link": site.url("/rapport.pdf")},
    ]
    site.route("/rss.xml", rss("Mixte", items), content_type="application/rss+xml")
    code, out, err = run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)
    assert code == 1 and "1 new, 0 updated, 0 unchanged, 2 failed" in out
    assert f"skipped {site.url('/disparu.html')}: HTTP 404 Not Found" in err
    assert f"skipped {site.url('/rapport.pdf')}: served as 'application/pdf'" in err
    for _ in range(4):
        run(capsys, "feeds", "refresh", "--index", idx)
    assert site.hits("/disparu.html") == 3  # tried again twice, then left until the entry changes
    assert site.hits("/monde/sommet.html") == 1


def test_a_web_page_that_names_its_feed_stands_for_it(site, idx, capsys):
    code, out, _ = run(capsys, "feeds", "add", site.url("/accueil.html"), "--index", idx)
    assert code == 0
    assert f"is a web page; following the feed it names: {site.url('/rss.xml')}" in out
    code, _, err = run(capsys, "feeds", "add", site.url("/monde/sommet.html"), "--index", idx)
    assert code == 1 and "is a web page, not a feed, and it names no feed" in err


def test_remove_with_and_without_its_articles(site, idx, capsys):
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx)[0] == 0
    assert run(capsys, "feeds", "add", site.url("/atom.xml"), "--index", idx)[0] == 0
    code, out, _ = run(capsys, "feeds", "remove", site.url("/atom.xml"), "--index", idx)
    assert code == 0 and len(rows(capsys, idx)) == 3
    assert run(capsys, "feeds", "add", site.url("/atom.xml"), "--index", idx)[0] == 0
    code, out, _ = run(capsys, "feeds", "remove", site.url("/rss.xml"), "--index", idx, "--delete-articles")
    assert code == 0 and "removed 2 article(s)" in out
    assert list(rows(capsys, idx)) == [url_id(site.url("/sport/marathon.html"))]
    code, out, _ = run(capsys, "feeds", "list", "--index", idx, "--json")
    assert [f["url"] for f in json.loads(out)] == [site.url("/atom.xml")]
    code, _, err = run(capsys, "feeds", "remove", site.url("/rss.xml"), "--index", idx)
    assert code == 1 and "not followed by this index" in err


def test_refresh_of_an_unknown_feed_and_an_empty_list(site, idx, capsys):
    assert run(capsys, "feeds", "list", "--index", idx)[1].startswith("no feeds followed")
    assert run(capsys, "feeds", "add", site.url("/rss.xml"), "--index", idx, "--no-refresh")[0] == 0
    code, _, err = run(capsys, "feeds", "refresh", site.url("/nope.xml"), "--index", idx)
    assert code == 1 and "not followed by this index" in err


def test_one_refresh_at_a_time(site, hash_config):
    from rag.feeds import follow, refresh
    from rag.fsutil import write_lock
    from rag.index import Index

    index = Index.create(hash_config.index_dir, hash_config)
    follow(index.path, site.url("/rss.xml"))
    with write_lock(index.path, name=".feeds-lock"), pytest.raises(IndexLockedError, match="already running"):
        refresh(index)
    assert refresh(index).added == 2
    index.close()


def test_an_index_that_cannot_be_written_leaves_the_feed_to_read_again(site, hash_config):
    from rag.errors import IndexLockedError as Locked
    from rag.feeds import FeedStore, follow, refresh
    from rag.index import Index

    index = Index.create(hash_config.index_dir, hash_config)
    follow(index.path, site.url("/rss.xml"))

    def locked_add(articles):
        raise Locked("another process is writing to the index")

    report = refresh(index, add=locked_add)
    assert report.failed_feeds == 1 and "another process" in report.feeds[0].error
    with FeedStore(index.path) as store:
        [feed] = store.feeds()
        assert feed.etag is None and store.entries(feed.url) == {}  # nothing recorded as read
    assert refresh(index).added == 2
    index.close()


def test_a_rebuild_keeps_the_feeds(site, hash_config):
    from rag.feeds import FeedStore, follow, refresh
    from rag.index import Index

    index = Index.create(hash_config.index_dir, hash_config)
    follow(index.path, site.url("/rss.xml"))
    refresh(index)
    index.close()
    Index.rebuild(hash_config.index_dir, hash_config.with_(chunk_size=48)).close()
    with FeedStore(hash_config.index_dir) as store:
        [feed] = store.feeds()
    assert feed.url == site.url("/rss.xml") and feed.articles == 2 and feed.etag == '"rss-1"'


# -- scheduling ---------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("90s", 90), ("1h30m", 5400), ("1d", 86400),
                                           (" 2 H ", 7200), ("1.5h", 5400)])
def test_durations(text, seconds):
    from rag.feeds import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, message", [("", "not a duration"), ("30", "not a duration"), ("5x", "not a duration"),
                                           ("m30", "not a duration"), ("10s", "too short")])
def test_bad_durations(text, message):
    from rag.feeds import parse_duration

    with pytest.raises(ConfigError, match=message):
        parse_duration(text)


def test_the_scheduler_runs_at_once_then_on_schedule_and_survives_a_failure():
    from rag.feeds import FeedScheduler

    runs = []
    done = threading.Event()

    def job():
        runs.append(time.monotonic())
        if len(runs) == 2:
            raise FeedError("http://x/feed", "boom")
        if len(runs) >= 3:
            done.set()

    scheduler = FeedScheduler(job, 0.05).start()
    assert done.wait(5)
    scheduler.stop(5)
    assert len(runs) >= 3 and runs[2] - runs[1] >= 0.04
    assert scheduler.runs >= 3 and scheduler.last_run


def test_the_app_refuses_a_bad_schedule(tmp_path, capsys):
    import app

    assert app.main(["--index", str(tmp_path / "none"), "--refresh-feeds", "soon"]) == 2
    assert "not a duration: 'soon'" in capsys.readouterr().err


def test_the_backend_refreshes_on_schedule_and_reports_each_feed(site, hash_config):
    from rag.feeds import follow
    from rag.index import Index
    from rag.ui import Backend

    Index.create(hash_config.index_dir, hash_config).close()
    follow(hash_config.index_dir, site.url("/rss.xml"))
    follow(hash_config.index_dir, site.url("/atom.xml"))
    site.routes["/atom.xml"] = site.routes["/broken.xml"]
    backend = Backend(Index.open(hash_config.index_dir))
    assert [r["url"] for r in backend.feeds()] == [site.url("/rss.xml"), site.url("/atom.xml")]
    scheduler = backend.refresh_feeds_every(3600)
    deadline = time.monotonic() + 10
    while scheduler.runs < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop(5)
    assert backend.counts()[0] == 2
    feeds = {r["url"]: r for r in backend.feeds()}
    assert feeds[site.url("/rss.xml")]["last_error"] is None and feeds[site.url("/rss.xml")]["last_checked"]
    assert "malformed feed" in feeds[site.url("/atom.xml")]["last_error"]
    assert backend.feeds_schedule().startswith("Feeds are read every 1 h, next at ")
    backend.index.close()


def test_a_feed_on_the_internet_may_not_send_us_to_local_addresses(site, monkeypatch):
    import rag.fetch
    from rag.errors import FetchError
    from rag.fetch import Fetcher, is_private_host

    assert is_private_host(site.url("/")) and is_private_host("http://localhost/") and is_private_host("http://10.1.2.3/")
    assert not is_private_host("http://93.184.215.14/") and not is_private_host("http://[2606:4700::1111]/")
    site.route("/away", redirect="http://10.255.255.1/admin")
    with Fetcher() as f:
        with pytest.raises(FetchError, match="127.0.0.1 is a local or private network address"):
            f.get(site.url("/monde/sommet.html"), public_only=True)
        assert site.hits("/monde/sommet.html") == 0
        # A public page that redirects to a private address is stopped at the redirect.
        monkeypatch.setattr(rag.fetch, "is_private_host", lambda url: "10.255.255.1" in url)
        with pytest.raises(FetchError, match="10.255.255.1 is a local or private network address"):
            f.get(site.url("/away"), public_only=True)
        assert site.hits("/away") == 1


def test_a_feed_file_from_another_program_or_version_is_refused(tmp_path):
    import sqlite3

    from rag.errors import IndexCorruptError, IndexMismatchError
    from rag.feeds import FeedStore

    FeedStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "feeds.sqlite")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexMismatchError, match="newer version"):
        FeedStore(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "feeds.sqlite").write_bytes(b"not a database at all, just bytes" * 10)
    with pytest.raises(IndexCorruptError, match="cannot read"):
        FeedStore(tmp_path / "other")


def test_the_library_tab_shows_each_feed_with_its_last_read_and_error(site, hash_config):
    """The app's Feeds table, built by the real Gradio page (no browser: its handler is called)."""
    from rag import ui
    from rag.feeds import follow, refresh
    from rag.index import Index

    index = Index.create(hash_config.index_dir, hash_config)
    follow(index.path, site.url("/rss.xml"))
    follow(index.path, site.url("/atom.xml"))
    site.routes["/atom.xml"] = site.routes["/broken.xml"]
    refresh(index)
    demo = ui.build_app(ui.Backend(index))
    feeds_view = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "feeds_view")
    rows, schedule = feeds_view()
    assert [r[0] for r in rows] == ["Le Journal — À la une", "Le Journal — Sport"]
    ok, broken = rows
    assert ok[2].endswith(" UTC") and ok[2] == ok[3] and ok[4] == 2 and ok[5] == ""
    assert broken[3] == "never" and broken[5].startswith("malformed feed")
    assert "rag feeds refresh" in schedule
    index.close()
