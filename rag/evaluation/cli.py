"""``rag eval``: retrieval and answer evaluation, and ``rag eval calibrate``, on the command line.

``rag/cli.py`` calls :func:`add_parser` only when the command is ``rag eval``, so the
other commands never import this package. Exit codes as for ``rag``: 0 done, 1 a problem it
explains (bad path or format, unknown configuration), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rag.errors import InputError
from rag.evaluation.runner import CONFIGS, DEFAULT_CONFIG, OUR_CONFIGS

log = logging.getLogger(__name__)

_DATA_HELP = "one data set: --squad FILE | --xquad FILE | --news FILE | --corpus PATH --gold FILE"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` (and ``eval calibrate``) to a ``rag`` sub-command parser."""
    ev = subparsers.add_parser(
        "eval", help="measure retrieval (and answers) on a gold set or a public data set",
        description="Retrieve the top k for every question of a data set with each configuration, and report "
                    "recall@k, MRR, bootstrap intervals and latency. Give " + _DATA_HELP + ".")
    _data_options(ev)
    ev.add_argument("--k", type=int, default=10, help="hits retrieved per question (default 10)")
    ev.add_argument("--compare", nargs="+", default=[DEFAULT_CONFIG], metavar="CONFIG",
                    help=f"configurations to run: {', '.join(CONFIGS)}, or 'all' (default: {DEFAULT_CONFIG}, "
                         "the pipeline the assistant uses)")
    ev.add_argument("--answers", action="store_true", help="also run the assistant (our configurations): accuracy, "
                                                           "EM, token F1, citations, refusal")
    ev.add_argument("--llm", metavar="SPEC", help="with --answers, generate with a model: openai:BASE_URL#MODEL, "
                                                  "llama-cpp:PATH.gguf, local (the bundled model) or "
                                                  "local:PATH.gguf (default: extractive quotes, no model)")
    ev.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the model (default 60)")
    ev.add_argument("--per-question", action="store_true",
                    help="with --answers, print every question: ok, WRONG, REFUSED (answerable) or ANSWERED "
                         "(unanswerable), with its evidence score")
    # One or the other: a report folder holds the numbers too, so they are never stored twice.
    out = ev.add_mutually_exclusive_group()
    out.add_argument("--json", type=Path, metavar="OUT", help="write every number to this JSON file")
    out.add_argument("--report", type=Path, metavar="DIR",
                     help="write report.md, the plots and every number (results.json) into this folder")
    ev.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ev.set_defaults(func=cmd_eval, _eval_parser=ev)

    sub = ev.add_subparsers(dest="eval_action", metavar="calibrate")
    cal = sub.add_parser(
        "calibrate", help="propose the refusal (and verifier) thresholds from data",
        description="Answer with refusal off over answerable and unanswerable questions (--holdout leaves part of the "
                    "pages out of a SQuAD/XQuAD corpus, making their questions unanswerable) and propose the evidence "
                    "score that best separates them; with a gold set that has answer sentences, also the citation "
                    "verifier's threshold. A gold set given with SQuAD/XQuAD data only sets the verifier threshold (it stays a "
                    "held-out check of refusal); given alone, it sets both. Prints the trade-off tables.")
    cal.add_argument("--squad", type=Path, action="append", default=[], metavar="FILE", help="SQuAD-format JSON (repeatable)")
    cal.add_argument("--xquad", type=Path, action="extend", nargs="+", default=[], metavar="FILE",
                     help="XQuAD cross-lingual JSONL file(s)")
    cal.add_argument("--corpus", type=Path, help="articles (file or folder) of a gold set")
    cal.add_argument("--gold", type=Path, help="gold JSONL over --corpus")
    cal.add_argument("--sample", type=int, default=150, help="questions per SQuAD/XQuAD set (default 150)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--holdout", type=float, default=0.5, help="share of SQuAD/XQuAD pages left out (default 0.5)")
    cal.add_argument("--near-miss", action="store_true",
                     help="SQuAD: --holdout leaves out passages, not pages (the rest of each page stays: near misses)")
    cal.add_argument("--retrieval", choices=tuple(OUR_CONFIGS), metavar="CONFIG",
                     help=f"retriever the assistant uses: {', '.join(OUR_CONFIGS)} "
                          "(default: the app's, from the index settings)")
    _build_options(cal)
    cal.add_argument("--json", type=Path, metavar="OUT", help="write the thresholds and tables here")
    cal.set_defaults(func=cmd_calibrate, _eval_parser=cal)
    return ev


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", type=Path, metavar="DIR",
                   help="index cache, reused when the corpus and settings match (default: <cache dir>/eval)")
    p.add_argument("--embedder", help="embedding model of our index (default: e5-small)")
    p.add_argument("--chunk-size", type=int, help="chunk size in model tokens (default 256)")
    p.add_argument("--chunk-overlap", type=int, help="chunk overlap in model tokens (default 32)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data set", _DATA_HELP)
    g.add_argument("--squad", type=Path, metavar="FILE", help="SQuAD-format JSON (PIAF, Service-Public)")
    g.add_argument("--xquad", type=Path, metavar="FILE", help="XQuAD cross-lingual JSONL (question_en over context)")
    g.add_argument("--news", type=Path, metavar="FILE", help="news JSONL(.gz): each title asks for its own article")
    g.add_argument("--corpus", type=Path, metavar="PATH", help="articles (file or folder) for --gold")
    g.add_argument("--gold", type=Path, metavar="FILE", help="gold JSONL (see rag.evaluation)")
    g.add_argument("--sample", type=int, help="questions drawn at random (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sample and the bootstrap (default 0)")
    g.add_argument("--limit", type=int, default=5000, help="news: first N usable articles (default 5000)")
    g.add_argument("--holdout", type=float, default=0.0,
                   help="SQuAD/XQuAD: share of pages left out, their questions unanswerable (default 0)")
    g.add_argument("--near-miss", action="store_true",
                   help="SQuAD: --holdout leaves out passages, not pages (the rest of each page stays: near misses)")
    _build_options(p)


# -- loading -----------------------------------------------------------------------------


def _existing(path: Path, what: str, *, folder_ok: bool = False) -> Path:
    if not path.exists():
        raise InputError(f"{what} not found", path=str(path))
    if not folder_ok and not path.is_file():
        raise InputError(f"{what} must be a file", path=str(path))
    return path


def load_dataset(args: argparse.Namespace):
    """The data set the flags name, with what the report says of it. Raises InputError for bad input."""
    from rag.evaluation import datasets
    from rag.evaluation.report import data_provenance

    given = [n for n in ("squad", "xquad", "news", "corpus") if getattr(args, n)]
    if len(given) != 1:
        args._eval_parser.error(f"give exactly one data set ({_DATA_HELP}); got {len(given) or 'none'}")
    if bool(args.corpus) != bool(args.gold):
        args._eval_parser.error("--corpus and --gold go together")
    if args.sample is not None and args.sample < 1:
        args._eval_parser.error(f"--sample must be positive, got {args.sample}")
    if not 0.0 <= args.holdout < 1.0:
        args._eval_parser.error(f"--holdout must be in [0, 1), got {args.holdout}")
    kind = given[0]
    path = args.gold if kind == "corpus" else getattr(args, kind)
    meta = {"kind": kind, "sample": args.sample, "seed": args.seed}
    try:
        if kind == "squad":
            ds = datasets.load_squad(_existing(args.squad, "SQuAD file"), sample=args.sample, seed=args.seed,
                                     holdout=args.holdout, near_miss=args.near_miss)
            meta["holdout"] = args.holdout
            meta["near_miss"] = args.near_miss
        elif kind == "xquad":
            ds = datasets.load_xquad(_existing(args.xquad, "XQuAD file"), sample=args.sample, seed=args.seed,
                                     holdout=args.holdout)
            meta["holdout"] = args.holdout
        elif kind == "news":
            if args.limit < 1:
                args._eval_parser.error(f"--limit must be positive, got {args.limit}")
            ds = datasets.load_news(_existing(args.news, "news file"), limit=args.limit, sample=args.sample,
                                    seed=args.seed)
            meta["limit"] = args.limit
        else:
            ds = _gold_dataset(args.corpus, args.gold, args.sample, args.seed)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        # The loaders read JSON by hand; a wrong file type surfaces as one of these.
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"cannot read it as {kind} data: {detail}", path=str(path)) from exc
    if not ds.articles:
        raise InputError(f"no articles found in the {kind} data", path=str(path))
    if not ds.items:
        raise InputError(f"no questions found in the {kind} data", path=str(path))
    meta["data"] = data_provenance(path)
    return ds, meta


def _gold_dataset(corpus: Path, gold: Path, sample: int | None, seed: int):
    from rag.articles import read_articles
    from rag.evaluation.datasets import Dataset, _sample
    from rag.evaluation.metrics import load_gold
    from rag.types import Article

    _existing(corpus, "corpus", folder_ok=True)
    items = load_gold(_existing(gold, "gold file"))
    articles = []
    for a in read_articles([corpus]):
        if isinstance(a, Article):
            articles.append(a)
        else:
            log.warning("skipped %s", a)
    return Dataset(gold.stem, articles, _sample(items, sample, seed))


def _config(args: argparse.Namespace):
    from rag.config import Config

    return Config.from_env(embedder=args.embedder, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)


def _bars(args: argparse.Namespace):
    from tqdm import tqdm

    def make(desc: str, total: int | None, unit: str):
        return tqdm(desc=desc, total=total, unit=unit, file=sys.stderr, disable=args.quiet, dynamic_ncols=True)

    return make


# -- commands ----------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.config import AnswerConfig
    from rag.evaluation.report import environment, format_per_question, format_table, write_json, write_report
    from rag.evaluation.runner import EvalOptions, check_configs, evaluate

    if args.k < 1 or args.k > 100:
        args._eval_parser.error(f"--k must be between 1 and 100, got {args.k}")
    names = list(CONFIGS) if args.compare == ["all"] else args.compare
    names = check_configs(names)
    if args.answers and not any(n in OUR_CONFIGS for n in names):
        log.warning("--answers runs the assistant on our configurations only; none of %s is one", ", ".join(names))
    if (args.llm or args.per_question) and not args.answers:
        args._eval_parser.error("--llm and --per-question go with --answers")
    if args.llm:
        from rag.llm import parse_llm_spec

        parse_llm_spec(args.llm, timeout=args.timeout)  # a bad spec fails before any index is built
    dataset, meta = load_dataset(args)
    config = _config(args)
    work = args.work or config.cache_dir / "eval"
    load_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    print(f"{dataset.name}: {len(dataset.articles)} passages/articles, {len(dataset.items)} questions; "
          f"configurations: {', '.join(names)} (of {', '.join(CONFIGS)}); index cache {work}", file=sys.stderr)
    run = evaluate(dataset, names, config=config, work_dir=work,
                   options=EvalOptions(k=args.k, answers=args.answers, resamples=args.resamples, seed=args.seed,
                                       answer_config=AnswerConfig(llm_timeout=args.timeout), llm=args.llm),
                   bar=_bars(args))
    run.meta = {**meta, "load_average_start": load_start, "environment": environment()}
    print(format_table(run))
    if args.per_question:
        print(format_per_question(run))
    if args.json:
        print(f"wrote {write_json(run, args.json)}", file=sys.stderr)
    if args.report:
        files = write_report(run, args.report)
        print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from rag.evaluation import datasets
    from rag.evaluation.calibrate import no_refusal_config, refusal_thresholds, verifier_threshold
    from rag.chat import Assistant
    from rag.evaluation.report import environment
    from rag.evaluation.runner import build_or_reuse_index, check_configs, make_retriever
    from rag.retriever import Retriever

    if not (args.squad or args.xquad or args.corpus):
        args._eval_parser.error("give data to calibrate on: --squad FILE, --xquad FILE..., or --corpus PATH --gold FILE")
    if bool(args.corpus) != bool(args.gold):
        args._eval_parser.error("--corpus and --gold go together")
    if not 0.0 < args.holdout < 1.0:
        args._eval_parser.error(f"--holdout must be between 0 and 1 (exclusive), got {args.holdout}")
    if args.retrieval:
        check_configs([args.retrieval])
    config = _config(args)
    work = args.work or config.cache_dir / "eval"
    bar = _bars(args)
    t0 = time.perf_counter()
    sets = []
    try:
        sets += [datasets.load_squad(_existing(p, "SQuAD file"), sample=args.sample, seed=args.seed,
                                     holdout=args.holdout, near_miss=args.near_miss) for p in args.squad]
        sets += [datasets.load_xquad(_existing(p, "XQuAD file"), sample=args.sample, seed=args.seed,
                                     holdout=args.holdout) for p in args.xquad]
    except (KeyError, TypeError) as exc:
        raise InputError(f"cannot read the data set: missing field {exc}") from exc
    gold = _gold_dataset(args.corpus, args.gold, None, args.seed) if args.corpus else None
    if gold is not None and any(it.unanswerable for it in gold.items):
        if sets:
            # The gold set stays a held-out check of the refusal thresholds.
            print(f"{gold.name}: used for the verifier threshold only (the refusal thresholds come from the "
                  "SQuAD/XQuAD sets, so the gold set stays a held-out check)", file=sys.stderr)
        else:
            sets.append(gold)
    runs, per_set, verify = [], {}, None
    for ds in sets:
        print(f"{ds.name}: {len(ds.articles)} passages, {len(ds.items)} questions "
              f"({sum(i.unanswerable for i in ds.items)} unanswerable)", file=sys.stderr)
        index, _ = build_or_reuse_index(ds, work, config, bar)
        try:
            retriever = make_retriever(index, args.retrieval) if args.retrieval else Retriever(index)
            assistant = Assistant(retriever, config=no_refusal_config())
            b = bar(f"{ds.name} answers", len(ds.items), " questions")
            answers = []
            for it in ds.items:
                answers.append(assistant.ask(it.question))
                b.update(1)
            b.close()
        finally:
            index.close()
        pairs = list(zip(ds.items, answers))
        runs += pairs
        per_set[ds.name] = refusal_thresholds(pairs)
    refusal = refusal_thresholds(runs) if runs else None
    if gold is not None and any(it.answer_sentence for it in gold.items):
        index, _ = build_or_reuse_index(gold, work, config, bar)
        try:
            verify = verifier_threshold(index, gold.items)
        finally:
            index.close()
    if refusal is not None:
        for group in ("same", "cross"):
            _print_refusal(group, refusal[group])
    if verify is not None:
        for group, v in verify.items():
            _print_verify(group, v)
    elif gold is not None:
        print("verify: the gold set has no answer_sentence fields; no verifier threshold proposed")
    proposal = {}
    if refusal:
        proposal.update({"refusal_threshold": refusal["same"].get("threshold"),
                         "refusal_threshold_cross": refusal["cross"].get("threshold")})
    if verify:
        proposal.update({"verify_threshold": verify["same"].get("threshold"),
                         "verify_threshold_cross": verify["cross"].get("threshold")})
    proposal = {k: v for k, v in proposal.items() if v is not None}
    if proposal:
        print("proposed AnswerConfig: " + ", ".join(f"{k}={v:.3f}" for k, v in proposal.items()))
    if args.json:
        from rag.fsutil import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, {
            "proposal": proposal, "refusal": refusal, "refusal_per_set": per_set, "verify": verify,
            "sample": args.sample, "seed": args.seed, "holdout": args.holdout, "embedder": config.embedder,
            "retrieval": args.retrieval or "index default",
            "seconds": round(time.perf_counter() - t0, 1), "environment": environment()})
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _print_refusal(group: str, r: dict) -> None:
    if r.get("threshold") is None:
        print(f"refusal ({group}-language): not enough data ({r.get('answerable', 0)} answerable, "
              f"{r.get('unanswerable', 0)} unanswerable)")
        return
    at = r["at_threshold"]
    print(f"refusal threshold ({group}-language): {r['threshold']:.4f}  answerable kept {at['answerable_kept']:.3f}, "
          f"unanswerable refused {at['unanswerable_refused']:.3f}, refusal precision {at['refusal_precision']:.3f} "
          f"(n={r['answerable']}+{r['unanswerable']})")
    print(f"   {'threshold':>9} {'kept':>6} {'refused':>7} {'ref.P':>6} {'bal.acc':>7}")
    for row in r["table"]:
        print(f"   {row['threshold']:9.3f} {row['answerable_kept']:6.3f} {row['unanswerable_refused']:7.3f} "
              f"{row['refusal_precision']:6.3f} {row['balanced_accuracy']:7.3f}")


def _print_verify(group: str, v: dict) -> None:
    if v.get("threshold") is None:
        print(f"verify ({group}-language): not enough data ({v.get('positives', 0)} supported, "
              f"{v.get('negatives', 0)} unsupported pairs)")
        return
    at = v["at_threshold"]
    print(f"verify threshold ({group}-language): {v['threshold']:.4f}  supported kept {at['answerable_kept']:.3f}, "
          f"unsupported rejected {at['unanswerable_refused']:.3f} (n={v['positives']}+{v['negatives']})")
    print(f"   {'threshold':>9} {'kept':>6} {'rejected':>8} {'bal.acc':>7}")
    for row in v["table"]:
        print(f"   {row['threshold']:9.3f} {row['answerable_kept']:6.3f} {row['unanswerable_refused']:8.3f} "
              f"{row['balanced_accuracy']:7.3f}")
