"""``rag reader train``: rebuild the bundled answer reader from PIAF (documented in MODEL_CARD.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_HERE = Path(__file__).parent


def add_reader_parser(subparsers) -> None:
    rd = subparsers.add_parser("reader", help="train and measure the answer reader").add_subparsers(
        dest="reader_action", required=True)
    t = rd.add_parser(
        "train", help="train the reader on PIAF (train pages), measure on PIAF dev pages and XQuAD",
        description="Seeded and offline: builds (or reuses) indexes of PIAF and XQuAD under --work, gathers the "
                    "candidates the default retriever finds, trains the feature scorer and the cross-encoder, "
                    "calibrates them on held-out train pages, and writes the weights and their metrics.")
    t.add_argument("--piaf", type=Path, required=True, metavar="FILE", help="PIAF v1.0 (SQuAD format)")
    t.add_argument("--xquad", type=Path, nargs="*", default=[], metavar="FILE",
                   help="XQuAD cross-lingual JSONL files, measured (never trained on); the first also fits the four "
                        "numbers of the cross-lingual combination, so the others are the unseen check")
    t.add_argument("--work", type=Path, default=Path("/tmp/rag-reader-work"), help="indexes and cached candidates")
    t.add_argument("--out", type=Path, default=_HERE, help="where the weights go (default: the package)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--json", type=Path, metavar="OUT", help="also write the metrics here")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_reader_train)


def cmd_reader_train(args: argparse.Namespace) -> int:
    from rag.reader.train import train_command

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = lambda desc, total: tqdm(desc=desc, total=total, mininterval=5, file=sys.stderr)  # noqa: E731
    meta = train_command(args.piaf, args.xquad, args.work, args.out, seed=args.seed, epochs=args.epochs, bar=bar)
    text = json.dumps(meta, indent=1, ensure_ascii=False)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0
