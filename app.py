"""Gradio page over the index: ask a question, read the passages that answer it.

Run with ``make run`` (builds the index of ``seeds/`` first when needed), or
``python app.py --index DIR [--host 127.0.0.1] [--port 7860]``.
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from pathlib import Path

import rag

log = logging.getLogger("app")


def render_hits(hits: list[rag.Hit]) -> str:
    """Passages as escaped HTML cards: article text is data, never markup."""
    if not hits:
        return "<p>No passage found.</p>"
    cards = []
    for i, h in enumerate(hits, 1):
        meta = " · ".join(html.escape(x) for x in (h.date, h.source) if x)
        cards.append(
            f"<div class='hit'><div><b>{i}. {html.escape(h.title)}</b> <small>{meta} · score {h.score:.3f}</small></div>"
            f"<p>{html.escape(h.text)}</p></div>"
        )
    return "\n".join(cards)


def build_app(retriever: rag.Retriever):
    import gradio as gr

    def search(question: str, k: int) -> str:
        try:
            return render_hits(retriever.retrieve(question, k=int(k)))
        except rag.InputError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title="News QA") as demo:
        gr.Markdown("## Ask the articles\nPassages from the indexed news articles closest to your question, in any language.")
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder="who coordinates the coalition?", scale=5)
            k = gr.Slider(1, 10, value=5, step=1, label="Passages", scale=1)
        go = gr.Button("Search", variant="primary")
        out = gr.HTML()
        gr.Examples(["who coordinates the coalition?", "Qui a annoncé la création de la coalition ?"], inputs=question)
        go.click(search, [question, k], out, api_name="search")
        question.submit(search, [question, k], out)
    return demo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, default=Path("index"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        retriever = rag.Retriever.load(args.index)
        retriever.warm_up()
    except rag.RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    build_app(retriever).queue(default_concurrency_limit=4).launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
