"""A small news site for tests, on 127.0.0.1: pages, RSS and Atom feeds, and bad answers.

    with NewsServer() as site:
        site.route("/a.html", ARTICLE_HTML)
        site.route("/feed.xml", rss([...]), content_type="application/rss+xml", etag='"v1"')
        fetch(site.url("/a.html"))
        assert site.hits("/a.html") == 1

A route answers with its status, type and body; one with an ``etag`` or
``last_modified`` answers a matching conditional request with 304. ``delay`` waits
before answering (a timeout), ``stream_bytes`` streams that many bytes with no
length (a huge page), ``redirect`` answers 302 to another path. Waits end early when
the server shuts down, so leaving the ``with`` block is quick and leaves no thread
running and no port open.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    stream_bytes: int = 0
    redirect: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class NewsServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._closing = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests.append((path, dict(self.headers)))
                    route = server.routes.get(path)
                if route is None:
                    return self._send(404, "text/html", b"<h1>Not found</h1>")
                if route.delay and server._closing.wait(route.delay):
                    return
                if route.redirect is not None:
                    return self._send(302, "text/html", b"", {"Location": route.redirect})
                validators = {k: v for k, v in (("ETag", route.etag), ("Last-Modified", route.last_modified)) if v}
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                if (route.etag and inm == route.etag) or (route.last_modified and not route.etag
                                                          and ims == route.last_modified):
                    return self._send(304, None, b"", validators)
                if route.stream_bytes:
                    return self._stream(route)
                self._send(route.status, route.content_type, route.body, {**validators, **route.headers})

            def _send(self, status: int, ctype: str | None, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)
                self.close_connection = True

            def _stream(self, route: Route) -> None:
                self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Connection", "close")
                self.end_headers()  # no length: read until the server closes
                piece = b"<p>" + b"x" * 8185 + b"</p>"
                sent = 0
                try:
                    while sent < route.stream_bytes and not server._closing.is_set():
                        self.wfile.write(piece)
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as it should
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="news-server", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, body: str | bytes = b"", **kw) -> Route:
        r = Route(body.encode("utf-8") if isinstance(body, str) else body, **kw)
        with self._lock:
            self.routes[path] = r
        return r

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(p == path for p, _ in self.requests)

    def last_headers(self, path: str) -> dict[str, str]:
        with self._lock:
            return next(h for p, h in reversed(self.requests) if p == path)

    def __enter__(self) -> "NewsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def article_html(title: str, paragraphs: list[str], *, date: str | None = None, canonical: str | None = None,
                 site: str | None = "Le Journal de Test", charset: str = "utf-8") -> str:
    """A news page as sites serve them: head metadata, a menu, the article, a footer."""
    meta = [f'<meta charset="{charset}">', f"<title>{title} | {site or 'Site'}</title>",
            f'<meta property="og:title" content="{title}">']
    if site:
        meta.append(f'<meta property="og:site_name" content="{site}">')
    if date:
        meta.append(f'<meta property="article:published_time" content="{date}">')
    if canonical:
        meta.append(f'<link rel="canonical" href="{canonical}">')
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!doctype html><html lang=\"fr\"><head>{''.join(meta)}</head><body>"
            "<nav><a href='/'>Accueil</a> <a href='/monde'>Monde</a></nav>"
            f"<article><h1>{title}</h1>{body}</article>"
            "<footer>© Le Journal de Test — mentions légales</footer></body></html>")


def rss(title: str, items: list[dict]) -> str:
    """An RSS 2.0 feed; each item has ``title``, ``link`` and optionally ``pubDate``, ``description``, ``guid``."""
    parts = []
    for it in items:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in it.items())
        parts.append(f"<item>{fields}</item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>http://example.invalid/</link><description>test</description>{''.join(parts)}</channel></rss>")


def atom(title: str, entries: list[dict]) -> str:
    """An Atom feed; each entry has ``title``, ``href`` (may be relative) and ``updated``."""
    parts = [f"<entry><title>{e['title']}</title><link rel=\"alternate\" href=\"{e['href']}\"/>"
             f"<id>{e.get('id', e['href'])}</id><updated>{e['updated']}</updated></entry>" for e in entries]
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{title}</title><id>urn:test:atom</id><updated>2025-09-01T08:00:00Z</updated>"
            f"{''.join(parts)}</feed>")
