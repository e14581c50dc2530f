"""Fetching pages (rag.fetch) and `rag index add URL`, against a local site on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from news_server import NewsServer, article_html, http_date
from rag.cli import main
from rag.errors import FetchError
from rag.fetch import FEED_TYPES, Fetcher, FetchLimits, check_url, normalize_url, page_article, url_id

PARAS = [
    "Le gouvernement a présenté mardi un plan de rénovation des écoles primaires, doté de deux milliards "
    "d'euros sur cinq ans. Les communes pourront déposer leurs dossiers dès le mois de janvier.",
    "Selon le ministère, près de quatre mille établissements construits avant 1975 sont concernés en priorité. "
    "Les travaux porteront sur l'isolation, le chauffage et la ventilation des salles de classe.",
    "Les associations de maires saluent une mesure attendue, tout en jugeant l'enveloppe insuffisante au regard "
    "des besoins recensés dans les départements ruraux.",
]


@pytest.fixture
def site():
    with NewsServer() as s:
        s.route("/ecoles.html", article_html("Un plan pour rénover les écoles", PARAS, date="2025-09-02T07:30:00Z",
                                             canonical="/actu/ecoles?utm_source=rss"))
        s.route("/sans-date.html", article_html("Une page sans date", PARAS, site=None))
        s.route("/moved", redirect="/ecoles.html")
        s.route("/loop-a", redirect="/loop-b")
        s.route("/loop-b", redirect="/loop-a")
        for i in range(7):
            s.route(f"/hop{i}", redirect=f"/hop{i + 1}")
        s.route("/hop7", article_html("Au bout", PARAS))
        s.route("/slow", article_html("Lente", PARAS), delay=5.0)
        s.route("/huge-declared", b"x" * 300_000)
        s.route("/huge-streamed", stream_bytes=50_000_000)
        s.route("/rapport.pdf", b"%PDF-1.7 binary", content_type="application/pdf")
        s.route("/cp1252.html", article_html("Déjà vu à l'école", PARAS, charset="windows-1252").encode("cp1252"),
                content_type="text/html")
        s.route("/to-ftp", redirect="ftp://127.0.0.1/file")
        yield s


def fetcher(**kw) -> Fetcher:
    return Fetcher(FetchLimits(**{"read_timeout": 2.0, "connect_timeout": 2.0, **kw}))


def test_a_page_becomes_an_article_with_its_canonical_url_date_and_site(site):
    with fetcher() as f:
        page = f.get(site.url("/ecoles.html"))
    article = page_article(page)
    canonical = site.url("/actu/ecoles?utm_source=rss")
    assert article.url == canonical and article.id == url_id(canonical) == url_id(site.url("/actu/ecoles"))
    assert article.title == "Un plan pour rénover les écoles"
    assert "quatre mille établissements" in article.text and "mentions légales" not in article.text
    assert article.date.startswith("2025-09-02") and article.source == "Le Journal de Test"
    assert article.origin == site.url("/ecoles.html")


def test_without_date_or_site_name_the_feed_date_and_host_fill_in(site):
    with fetcher() as f:
        article = page_article(f.get(site.url("/sans-date.html")), date="2025-08-30T12:00:00+00:00")
    assert article.date == "2025-08-30T12:00:00+00:00" and article.source == "127.0.0.1"
    assert article.url == site.url("/sans-date.html")


def test_a_canonical_on_another_site_is_ignored(site):
    site.route("/copie.html", article_html("Copie", PARAS, canonical="https://other.example/their-article"))
    with fetcher() as f:
        article = page_article(f.get(site.url("/copie.html")))
    assert article.url == site.url("/copie.html") and article.id == url_id(site.url("/copie.html"))


def test_redirects_are_followed_to_the_final_url(site):
    with fetcher() as f:
        page = f.get(site.url("/moved"))
    assert page.url == site.url("/moved") and page.final_url == site.url("/ecoles.html")
    assert site.hits("/ecoles.html") == 1


@pytest.mark.parametrize("path, reason", [
    ("/nowhere", "HTTP 404 Not Found"),
    ("/loop-a", "redirect loop"),
    ("/hop0", "more than 5 redirects"),
    ("/rapport.pdf", "served as 'application/pdf'"),
    ("/huge-declared", "larger than the 64 KB limit (not downloaded)"),
    ("/to-ftp", "redirected to ftp://127.0.0.1/file, which cannot be fetched"),
])
def test_bad_answers_are_fetch_errors_naming_the_url_and_the_reason(site, path, reason):
    with fetcher(max_bytes=65536) as f, pytest.raises(FetchError) as exc:
        f.get(site.url(path))
    assert exc.value.url == site.url(path) and reason in exc.value.reason
    assert str(exc.value).startswith(site.url(path))


def test_a_huge_page_without_a_length_is_dropped_once_past_the_cap(site):
    t0 = time.monotonic()
    with fetcher(max_bytes=256 * 1024) as f, pytest.raises(FetchError, match="download stopped"):
        f.get(site.url("/huge-streamed"))
    assert time.monotonic() - t0 < 5  # 50 MB were on offer; a few hundred KB were read


def test_a_server_that_does_not_answer_times_out(site):
    t0 = time.monotonic()
    with fetcher(read_timeout=0.3) as f, pytest.raises(FetchError, match=r"timed out waiting for the server \(after 0.3 s\)"):
        f.get(site.url("/slow"))
    assert time.monotonic() - t0 < 3


def test_a_server_that_cannot_be_reached_is_a_fetch_error():
    with fetcher(connect_timeout=1.0) as f, pytest.raises(FetchError, match="cannot connect"):
        f.get("http://127.0.0.1:9/")  # the discard port: nothing listens


@pytest.mark.parametrize("url", ["ftp://example.org/a", "file:///etc/passwd", "javascript:alert(1)", "/etc/hosts",
                                 "http:///nohost", "http://exa mple.org/"])
def test_only_http_and_https_urls_are_fetched(url):
    with pytest.raises(FetchError):
        check_url(url)


def test_conditional_get_gives_304_and_no_body(site):
    stamp = http_date(1_756_800_000)
    site.route("/etag.html", article_html("E", PARAS), etag='"v1"')
    site.route("/lm.html", article_html("L", PARAS), last_modified=stamp)
    with fetcher() as f:
        first = f.get(site.url("/etag.html"))
        assert first.status == 200 and first.etag == '"v1"' and first.body
        again = f.get(site.url("/etag.html"), etag=first.etag)
        assert again.not_modified and again.body == b""
        assert site.last_headers("/etag.html")["If-None-Match"] == '"v1"'
        lm = f.get(site.url("/lm.html"))
        assert lm.last_modified == stamp
        assert f.get(site.url("/lm.html"), last_modified=lm.last_modified).not_modified
        site.route("/etag.html", article_html("E2", PARAS), etag='"v2"')
        changed = f.get(site.url("/etag.html"), etag='"v1"')
    assert changed.status == 200 and changed.etag == '"v2"' and changed.checksum != first.checksum


def test_the_charset_comes_from_the_page_when_the_header_has_none(site):
    with fetcher() as f:
        page = f.get(site.url("/cp1252.html"))
    assert page.charset is None and "Déjà vu à l'école" in page.text()


def test_feeds_take_xml_types_and_pages_do_not(site):
    site.route("/feed.xml", "<?xml version='1.0'?><rss version='2.0'><channel/></rss>",
               content_type="application/rss+xml")
    with fetcher() as f:
        assert f.get(site.url("/feed.xml"), accept=FEED_TYPES).content_type == "application/rss+xml"
        with pytest.raises(FetchError, match="application/rss\\+xml"):
            f.get(site.url("/feed.xml"))


def test_the_user_agent_names_the_tool_and_can_be_set(site, monkeypatch):
    with fetcher() as f:
        f.get(site.url("/ecoles.html"))
    assert site.last_headers("/ecoles.html")["User-Agent"].startswith("rag-news/")
    monkeypatch.setenv("RAG_USER_AGENT", "newsroom-bot/1.0 (+mailto:desk@example.org)")
    with fetcher() as f:
        f.get(site.url("/ecoles.html"))
    assert site.last_headers("/ecoles.html")["User-Agent"] == "newsroom-bot/1.0 (+mailto:desk@example.org)"


def test_normalized_urls_share_an_id():
    assert normalize_url("HTTPS://Example.ORG:443/a?b=1&utm_source=x&fbclid=y#top") == "https://example.org/a?b=1"
    assert url_id("http://example.org") == url_id("http://EXAMPLE.org:80/")
    assert url_id("http://example.org/a?id=1") != url_id("http://example.org/a?id=2")


def test_bad_limits_are_refused():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="max_bytes"):
        FetchLimits(max_bytes=0)


# -- rag index add URL -----------------------------------------------------------


def test_index_add_takes_urls_with_paths_and_reports_bad_pages(tmp_path, seed_dir, site, capsys):
    idx = str(tmp_path / "idx")
    args = ["index", "add", str(seed_dir), site.url("/ecoles.html"), site.url("/nowhere"), site.url("/rapport.pdf"),
            "--index", idx, "--embedder", "hash", "-q"]
    assert main(args) == 1  # two pages could not be read; the rest is indexed
    out, err = capsys.readouterr()
    assert "2 added" in out
    assert f"skipped {site.url('/nowhere')}: HTTP 404 Not Found" in err
    assert f"skipped {site.url('/rapport.pdf')}: served as 'application/pdf'" in err
    assert "2 file(s), record(s) or page(s) could not be read" in err
    assert main(["index", "list", "--index", idx, "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    page_id = url_id(site.url("/actu/ecoles"))
    assert len(rows) == 2 and rows[page_id]["url"] == site.url("/actu/ecoles?utm_source=rss")

    # Fetched again unchanged: nothing embedded. Changed: the same article is replaced.
    assert main(["index", "add", site.url("/ecoles.html"), "--index", idx, "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == [page_id] and report["chunks_added"] == 0
    site.route("/ecoles.html", article_html("Un plan pour rénover les écoles", PARAS + ["Mise à jour : le décret "
               "est paru au Journal officiel ce mercredi."], canonical="/actu/ecoles"))
    assert main(["index", "add", site.url("/ecoles.html"), "--index", idx, "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["updated"] == [page_id] and report["chunks_added"] > 0
    assert main(["index", "list", "--index", idx, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_a_url_that_fails_saves_nothing(tmp_path, site, hash_config):
    from rag.index import Index

    index = Index.create(hash_config.index_dir, hash_config)
    report = index.add([site.url("/nowhere"), site.url("/loop-a")])
    assert report.added == [] and report.problem_count == 2 and index.store.counts() == (0, 0)
    assert [p.path for p in report.problems] == [site.url("/nowhere"), site.url("/loop-a")]
    index.close()
