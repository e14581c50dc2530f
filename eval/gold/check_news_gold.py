"""Check eval/gold/news.jsonl against eval/gold/news_articles.jsonl (stdlib only).

Verifies: JSON validity, unique ids, field types, allowed values, that every `answers`,
`all_of` and `support` string occurs literally in the text of one of the item's `relevant`
articles, that `relevant` ids exist, that follow-ups have a `history` whose questions are in
the set, that unanswerable items have no answers and say `why`, and that each article of an
`articles` item holds one of its `all_of` phrases. Prints counts by type and language.
Exit code 1 on any problem.

    python3 eval/gold/check_news_gold.py [news.jsonl] [news_articles.jsonl]
"""
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = {"factual", "multi", "articles", "summary", "followup", "unanswerable"}
WH = {"who", "when", "where", "how many", "which", "why"}


def main(argv):
    gold = argv[1] if len(argv) > 1 else os.path.join(HERE, "news.jsonl")
    corpus = argv[2] if len(argv) > 2 else os.path.join(HERE, "news_articles.jsonl")
    problems = []
    texts = {}
    for n, line in enumerate(open(corpus, encoding="utf-8"), 1):
        a = json.loads(line)
        for k in ("id", "title", "text", "date", "source"):
            if not isinstance(a.get(k), str):
                problems.append(f"corpus line {n}: field {k} missing or not a string")
        if a["id"] in texts:
            problems.append(f"corpus: duplicate article id {a['id']}")
        texts[a["id"]] = a["text"]

    items = []
    for n, line in enumerate(open(gold, encoding="utf-8"), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: invalid JSON ({e})")
    questions = {it.get("question") for it in items}
    ids = collections.Counter(it.get("id") for it in items)
    for i, c in ids.items():
        if c > 1:
            problems.append(f"duplicate id {i}")

    def is_strlist(x):
        return isinstance(x, list) and all(isinstance(s, str) and s for s in x)

    for it in items:
        iid = it.get("id", "?")
        p = lambda msg: problems.append(f"{iid}: {msg}")  # noqa: E731
        for k in ("id", "question", "lang", "type"):
            if not isinstance(it.get(k), str) or not it.get(k):
                p(f"field {k} missing or not a non-empty string")
        t = it.get("type")
        if t not in TYPES:
            p(f"unknown type {t!r}")
        if it.get("lang") not in ("fr", "en"):
            p(f"lang must be 'fr' or 'en', got {it.get('lang')!r}")
        for k in ("answers", "support", "relevant"):
            if not isinstance(it.get(k), list) or not all(isinstance(s, str) and s for s in it[k]):
                p(f"field {k} must be a list of non-empty strings")
        if not isinstance(it.get("unanswerable"), bool):
            p("field unanswerable must be a boolean")
        if "answer_sentence" in it and not isinstance(it["answer_sentence"], str):
            p("answer_sentence must be a string")
        rel = it.get("relevant") or []
        for r in rel:
            if r not in texts:
                p(f"relevant article {r} not in corpus")
        rel_texts = [texts[r] for r in rel if r in texts]

        def literal(s, what):
            if not any(s in tx for tx in rel_texts):
                p(f"{what} not found literally in a relevant article: {s!r}")

        all_of = it.get("all_of")
        parts = []
        if all_of is not None:
            if not isinstance(all_of, list) or not all_of:
                p("all_of must be a non-empty list")
            else:
                for part in all_of:
                    if isinstance(part, str):
                        parts.append([part])
                    elif is_strlist(part) and part:
                        parts.append(part)
                    else:
                        p(f"bad all_of part {part!r}")
        for s in it.get("answers") or []:
            literal(s, "answer")
        for s in it.get("support") or []:
            literal(s, "support")
        for part in parts:
            for s in part:
                literal(s, "all_of string")

        if t == "unanswerable":
            if it.get("unanswerable") is not True:
                p("unanswerable item must have unanswerable: true")
            if it.get("answers"):
                p("unanswerable item must have answers: []")
            if not isinstance(it.get("why"), str) or not it.get("why"):
                p("unanswerable item must say why")
        else:
            if it.get("unanswerable") is not False:
                p("answerable item must have unanswerable: false")
            if not rel:
                p("answerable item needs relevant articles")
            if not it.get("support"):
                p("answerable item needs support")
        if t in ("factual", "followup") and not it.get("answers"):
            p(f"{t} item needs answers")
        if t == "factual" and it.get("wh") not in WH:
            p(f"factual item needs wh in {sorted(WH)}")
        if t == "multi":
            if len(parts) < 2 or not it.get("answers"):
                p("multi item needs answers and all_of with >= 2 parts")
            elif not set(it["answers"]) & set(parts[0]):
                p("multi: answers should be the alternatives of the first all_of part")
        if t == "summary" and not 2 <= len(parts) <= 3:
            p("summary item needs 2-3 all_of facts")
        if t == "articles":
            if len(rel) < 2:
                p("articles item needs >= 2 relevant articles")
            for r in rel:
                if r in texts and not any(s in texts[r] for part in parts for s in part):
                    p(f"articles: relevant article {r} holds none of the all_of phrases")
        if t == "followup":
            h = it.get("history")
            if not is_strlist(h) or not h:
                p("followup needs a non-empty history list")
            else:
                for q in h:
                    if q not in questions:
                        p(f"history question not in the set: {q!r}")
        elif "history" in it and not is_strlist(it["history"]):
            p("history must be a list of strings")

    by_type = collections.Counter(it.get("type") for it in items)
    by_lang = collections.Counter(it.get("lang") for it in items)
    by_type_lang = collections.Counter((it.get("type"), it.get("lang")) for it in items)
    wh = collections.Counter(it.get("wh") for it in items if it.get("type") == "factual")
    off_topic = sum(1 for it in items if it.get("type") == "unanswerable" and not it.get("relevant"))
    answerable = sum(1 for it in items if it.get("unanswerable") is False)
    print(f"{len(items)} items over {len(texts)} articles; answerable {answerable}, "
          f"unanswerable {len(items) - answerable} (near-miss {len(items) - answerable - off_topic}, "
          f"off-topic {off_topic})")
    print("by language:", dict(sorted(by_lang.items())))
    print("by type:")
    for t in sorted(by_type):
        print(f"  {t:13s} {by_type[t]:4d}   fr {by_type_lang[(t, 'fr')]:3d}  en {by_type_lang[(t, 'en')]:3d}")
    print("factual by question word:", dict(sorted(wh.items())))
    cited = {r for it in items for r in it.get("relevant") or []}
    print(f"articles cited by at least one item: {len(cited)}")
    if problems:
        print(f"\n{len(problems)} PROBLEM(S):")
        for pr in problems:
            print("  -", pr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
