"""Syndicated copies (rag.dedup): grouping at ingest, kept across ingests, reopenings and
removals, and answers that cite a story once, saying who else published it.

Plumbing tests over the hashing embedder; the texts are the seed article and hand-written
variants of it (a copy with a new headline and last paragraph, an unrelated article on the
same topic).
"""

from __future__ import annotations

import json

import pytest

import rag
from rag import dedup
from rag.chat import Assistant
from rag.cli import main
from rag.config import AnswerConfig

from conftest import SEED

TITLE, BODY = SEED.read_text(encoding="utf-8").split("\n", 1)
BODY = BODY.strip()
#: the seed's last paragraph replaced by another one (a paper's own ending)
NEW_ENDING = ("De son côté, le gouvernement irlandais a indiqué lundi qu'il attendait la réunion des chefs d'état-major "
              "avant de se prononcer sur une contribution à la mission.")
NEAR = BODY.rsplit("\n", 1)[0] + "\n" + NEW_ENDING
#: the same topic (the coalition, Ukraine, troops), another article
SAME_TOPIC = (
    "Les dirigeants de la coalition des volontaires se sont réunis jeudi à Paris pour discuter des garanties de "
    "sécurité offertes à l'Ukraine après un éventuel cessez-le-feu. Emmanuel Macron a affirmé que vingt-six pays "
    "s'étaient engagés à déployer des troupes ou à apporter un soutien sur terre, en mer ou dans les airs. "
    "Le président ukrainien Volodymyr Zelensky, présent à l'Élysée, a salué une décision « concrète » et a demandé "
    "que les États-Unis participent eux aussi au dispositif. Moscou a immédiatement rejeté toute présence de soldats "
    "occidentaux sur le sol ukrainien, qualifiant le projet de provocation. Les discussions doivent se poursuivre "
    "la semaine prochaine entre les chefs d'état-major des pays concernés.")
NO_REFUSAL = dict(refusal_threshold=-1, refusal_threshold_cross=-1, topic_threshold=-1, topic_threshold_cross=-1)


def article(aid: str, text: str = BODY, *, title: str = TITLE, source: str | None = None, date: str | None = None):
    return rag.Article(id=aid, title=title, text=text, source=source, date=date)


def similarity(a: str, b: str) -> float:
    return dedup.jaccard(dedup.shingles(dedup.normalized_words(a)), dedup.shingles(dedup.normalized_words(b)))


@pytest.fixture
def index(hash_config):
    ix = rag.Index.create(hash_config.index_dir, hash_config)
    yield ix
    ix.close()


def test_normalized_words_ignore_case_punctuation_and_missing_spaces():
    assert dedup.normalized_words("Les Pyrénées.Alors que l’État « dit » : OUI !") == [
        "les", "pyrénées", "alors", "que", "l", "état", "dit", "oui"]
    assert dedup.normalized_words("  ") == [] and dedup.normalized_words(None) == []


def test_the_test_texts_are_what_they_claim():
    assert 0.8 <= similarity(BODY, NEAR) < 1.0
    assert similarity(BODY, SAME_TOPIC) < 0.05
    assert len(dedup.normalized_words(SAME_TOPIC)) >= dedup.MIN_WORDS


def test_signatures_and_band_keys_are_fixed():
    # Stored band keys are looked up by later ingests, in other processes and versions: a
    # change of hashing (a datasketch upgrade) must be seen, and SETTINGS' version bumped.
    assert dedup.signature({"un deux trois quatre cinq"}).tolist()[:4] == [1644162698, 3724458519, 627706707, 946310620]
    sketch = dedup.Sketch.of("T", " ".join(f"mot{i}" for i in range(60)))
    assert sketch.long and len(sketch.keys) == dedup.BANDS
    assert sketch.keys[:2] == (-2611971712250645712, 4291901677316285705)


def test_exact_and_near_copies_are_one_story_unrelated_articles_on_the_topic_are_not(index):
    index.add([article("lemonde", source="Le Monde"),
               article("exact", source="Ouest-France"),
               article("libe", NEAR, title="Ukraine : pas de soldats pour la coalition", source="Libération"),
               article("other", SAME_TOPIC, title="La coalition se réunit à Paris", source="Le Monde")])
    story = index.store.stories_of(["lemonde", "exact", "libe", "other"])
    assert story == {"lemonde": "lemonde", "exact": "lemonde", "libe": "lemonde", "other": "other"}
    copies = index.store.copies(["libe", "other"])
    assert [c.article_id for c in copies["libe"]] == ["lemonde", "exact"] and "other" not in copies
    assert [c.source for c in copies["libe"]] == ["Le Monde", "Ouest-France"]
    assert index.stats()["stories"] == {"grouped": True, "stories": 2, "copies": 2}
    # Every copy stays searchable.
    hits = rag.Retriever(index).retrieve("Qui coordonne la coalition des volontaires ?", k=10)
    assert {"lemonde", "exact", "libe"} <= {h.article_id for h in hits}


def test_short_bodies_are_grouped_only_as_exact_copies(index):
    short = ("Vidéo. Retrouvez chaque soir le journal télévisé de 20 heures présenté par Anne-Claire Coudray, avec "
             "les principaux titres de l'actualité en France et dans le monde, les reportages de nos envoyés spéciaux, "
             "la météo du lendemain et les résultats sportifs du jour. Édition du 3 mars.")
    other_day = short.replace("3 mars", "4 mars")
    assert len(dedup.normalized_words(short)) < dedup.MIN_WORDS
    assert similarity(short, other_day) >= dedup.THRESHOLD  # what shingles alone would group
    index.add([article("s1", short, title="Le JT de 20h"),
               article("s2", other_day, title="Le JT de 20h"),
               article("s3", short, title="Le JT de 20h", source="TF1"),
               article("s4", short, title="Autre chose"),
               article("e1", "", title="Vide"), article("e2", "", title="Vide")])
    story = index.store.stories_of(["s1", "s2", "s3", "s4", "e1", "e2"])
    assert story == {"s1": "s1", "s2": "s2", "s3": "s1", "s4": "s4", "e1": "e1", "e2": "e2"}


def test_grouping_holds_across_add_calls_and_reopening(hash_config):
    ix = rag.Index.create(hash_config.index_dir, hash_config)
    ix.add([article("first", source="AFP")])
    ix.add([article("second", NEAR, title="Autre titre", source="Le Figaro")])
    assert ix.store.stories_of(["second"]) == {"second": "first"}
    ix.close()
    ix = rag.Index.open(hash_config.index_dir)
    ix.add([article("third", source="20 Minutes")])
    assert ix.store.stories_of(["first", "second", "third"]) == {"first": "first", "second": "first", "third": "first"}
    assert json.loads((hash_config.index_dir / "manifest.json").read_text())["stories"] == dedup.SETTINGS
    ix.close()


def chain():
    """Three bodies where b copies a and c copies b, but c is too far from a."""
    paras = BODY.split("\n")
    a = "\n".join(paras)
    b = "\n".join(paras[:-1] + [NEW_ENDING])
    c = "\n".join(["Une introduction toute différente, écrite par la rédaction du journal pour ses lecteurs du matin, "
                   "qui remplace le premier paragraphe de la dépêche et ajoute quelques détails."] + paras[1:-1] + [NEW_ENDING])
    assert similarity(a, b) >= 0.8 and similarity(b, c) >= 0.8 and similarity(a, c) < 0.8
    return a, b, c


def test_removing_the_representative_moves_the_story_to_the_next_copy(index):
    index.add([article("a", source="AFP"), article("b", source="Le Monde"), article("c", NEAR, source="Libération")])
    assert set(index.store.stories_of(["a", "b", "c"]).values()) == {"a"}
    assert index.remove("a")
    assert index.store.stories_of(["b", "c"]) == {"b": "b", "c": "b"}
    assert [c.article_id for c in index.store.copies(["c"])["c"]] == ["b"]


def test_removing_the_link_of_a_chain_splits_the_story(index):
    a, b, c = chain()
    index.add([article("a", a), article("b", b), article("c", c)])
    assert index.store.stories_of(["a", "b", "c"]) == {"a": "a", "b": "a", "c": "a"}
    index.remove("b")
    assert index.store.stories_of(["a", "c"]) == {"a": "a", "c": "c"}
    assert index.stats()["stories"]["copies"] == 0


def test_replacing_an_article_by_another_text_takes_it_out_of_its_story(index):
    index.add([article("a"), article("b"), article("c")])
    index.add([article("a", SAME_TOPIC)])  # new content under the same id
    assert index.store.stories_of(["a", "b", "c"]) == {"a": "a", "b": "b", "c": "b"}


def test_incremental_stories_are_those_of_a_fresh_grouping(index):
    a, b, c = chain()
    index.add([article("a", a), article("x", SAME_TOPIC), article("b", b)])
    index.add([article("c", c), article("d", a), article("y", SAME_TOPIC + " Fin.")])
    index.remove("a")
    index.add([article("b", b + "\nUne phrase de plus.")])
    ids = ["b", "c", "d", "x", "y"]
    incremental = index.store.stories_of(ids)
    db = index.store._db
    with index.store._lock:
        db.execute("BEGIN IMMEDIATE")
        dedup.regroup_all(db)
        db.execute("COMMIT")
    assert index.store.stories_of(ids) == incremental
    assert len(set(incremental.values())) < len(ids)  # the sequence did group something


def test_an_index_from_before_stories_is_grouped_by_its_next_write_or_a_rebuild(hash_config, capsys):
    ix = rag.Index.create(hash_config.index_dir, hash_config)
    ix.add([article("a"), article("b")])
    with ix.store._lock:  # what an index written by the previous version holds
        ix.store._db.execute("DELETE FROM stories")
        ix.store._db.execute("DELETE FROM meta WHERE key = 'stories'")
    ix.close()
    ix = rag.Index.open(hash_config.index_dir)
    assert ix.stats()["stories"] == {"grouped": False, "stories": None, "copies": None}
    assert ix.store.stories_of(["a", "b"]) == {"a": "a", "b": "b"}  # each its own story meanwhile
    ix.close()
    assert main(["index", "stats", "--index", str(hash_config.index_dir)]) == 0
    assert "copies not grouped yet" in capsys.readouterr().out
    rag.Index.rebuild(hash_config.index_dir, hash_config).close()
    ix = rag.Index.open(hash_config.index_dir)
    assert ix.store.stories_of(["a", "b"]) == {"a": "a", "b": "a"}
    with ix.store._lock:
        ix.store._db.execute("DELETE FROM meta WHERE key = 'stories'")
    ix.add([article("c", NEAR)])  # a write groups the older articles first
    assert ix.store.stories_of(["a", "b", "c"]) == {"a": "a", "b": "a", "c": "a"}
    ix.close()
    assert main(["index", "stats", "--index", str(hash_config.index_dir)]) == 0
    assert "stories    1 (2 articles grouped as copies of another)" in capsys.readouterr().out


# -- answers -----------------------------------------------------------------------------------

@pytest.fixture
def copies_index(index):
    index.add([article("lemonde", source="Le Monde", date="2025-08-10"),
               article("libe", NEAR, title="Ukraine : pas de soldats pour la coalition", source="Libération",
                       date="2025-08-10"),
               article("other", SAME_TOPIC, title="La coalition se réunit à Paris", source="Le Figaro",
                       date="2025-09-04")])
    return index


def story_sources(answer: rag.Answer, index) -> list[str]:
    story = index.store.stories_of([c.article_id for c in answer.citations])
    return [story[c.article_id] for c in answer.citations]


# Without the grouping, the second one quotes both copies (a sentence of each, one per part).
@pytest.mark.parametrize("question", ["Qui coordonne la coalition des volontaires ?",
                                      "Qui ne veut envoyer ses soldats mourir en Ukraine, et qu'attend le gouvernement "
                                      "irlandais ?"])
def test_an_answer_cites_one_copy_of_a_story_and_names_the_others(copies_index, question):
    assistant = Assistant(rag.Retriever(copies_index), config=AnswerConfig(**NO_REFUSAL, k=8))
    answer = assistant.ask(question)
    assert not answer.refused and answer.citations
    in_story = [c for c in answer.citations if c.article_id in ("lemonde", "libe")]
    assert in_story and len({c.article_id for c in in_story}) == 1  # never both copies
    cited = in_story[0]
    assert [c.article_id for c in cited.also_published_by] == [{"lemonde": "libe", "libe": "lemonde"}[cited.article_id]]
    assert copies_index.get_article(cited.article_id).text[cited.start : cited.end] == cited.quote
    assert answer.to_dict()["citations"][0]["also_published_by"][0]["source"] in ("Le Monde", "Libération")


def test_the_article_list_shows_a_story_once_with_who_else_published_it(copies_index):
    assistant = Assistant(rag.Retriever(copies_index), config=AnswerConfig(**NO_REFUSAL))
    answer = assistant.ask("Quels articles parlent de la coalition des volontaires ?")
    ids = [c.article_id for c in answer.citations]
    assert len(ids) == 2 and "other" in ids and len({"lemonde", "libe"} & set(ids)) == 1
    cited = next(c for c in answer.citations if c.article_id != "other")
    other_source = {"lemonde": "Libération", "libe": "Le Monde"}[cited.article_id]
    line = next(ln for ln in answer.text.splitlines() if cited.title in ln)
    assert f"aussi publié par {other_source}" in line
    assert answer.text.startswith("2 articles")


def test_a_language_model_is_shown_one_copy_of_a_story(copies_index):
    import re

    from fake_llm_server import FakeChatServer
    from rag.llm.openai_compat import OpenAICompatibleLLM

    prompts = []

    def reply(body: dict) -> str:  # repeats the first sentence of source [1], citing it
        prompts.append(body["messages"][1]["content"])
        first = prompts[-1].split("<<<\n", 1)[1].split(">>>", 1)[0]
        return re.split(r"(?<=[.!?])\s", first.strip(), maxsplit=1)[0].rstrip(".") + " [1]."

    with FakeChatServer(reply) as server:
        llm = OpenAICompatibleLLM(server.base_url, "fake-model", api_key_env=None, timeout=5)
        answer = Assistant(rag.Retriever(copies_index), llm, AnswerConfig(**NO_REFUSAL, k=8)).ask(
            "Qui coordonne la coalition des volontaires ?")
    sources = re.findall(r"^\[\d+\] (.+?) \(", prompts[0], flags=re.M)
    copy_titles = {copies_index.get_article(a).title for a in ("lemonde", "libe")}
    assert sources and len(copy_titles & set(sources)) == 1  # the model never sees both copies
    assert answer.answerer.startswith("llm:") and answer.citations and not answer.notice
    assert all(c.also_published_by for c in answer.citations if c.article_id in ("lemonde", "libe"))


def test_cli_and_source_card_show_also_published_by(copies_index, hash_config, capsys, monkeypatch):
    from rag import ui

    copies_index.close()
    also = (rag.types.Copy("lemonde", "T", "2025-08-10", "Le Monde & co"),)
    cit = rag.Citation(1, "libe", "T", None, "Libération", None, "q", 0, 1, also_published_by=also)
    canned = rag.Answer(question="q", text="« q » [1]", citations=[cit])
    monkeypatch.setattr(Assistant, "ask", lambda self, question, **kw: canned)
    idx = str(hash_config.index_dir)
    assert main(["ask", "Qui coordonne la coalition ?", "--index", idx]) == 0
    assert "also published by Le Monde & co" in capsys.readouterr().out
    assert main(["ask", "Qui coordonne la coalition ?", "--index", idx, "--json"]) == 0
    [c] = json.loads(capsys.readouterr().out)["citations"]
    assert c["also_published_by"] == [{"article_id": "lemonde", "title": "T", "date": "2025-08-10",
                                       "source": "Le Monde & co", "url": None}]
    card = ui.render_sources(canned, {}.get, show_timings=False)
    assert "Also published by Le Monde &amp; co" in card
    from rag.ui.layout import answer_to_dict

    assert answer_to_dict(canned)["citations"][0]["also_published_by"][0]["source"] == "Le Monde & co"


@pytest.mark.slow
def test_with_the_real_model_two_copies_are_cited_once(tmp_path, model_cache):
    from rag.config import Config

    path = tmp_path / "e5"
    index = rag.Index.create(path, Config(index_dir=path, cache_dir=model_cache))
    index.add([article("lemonde", source="Le Monde"),
               article("libe", NEAR, title="Ukraine : pas de soldats pour la coalition", source="Libération")])
    answer = Assistant(rag.Retriever(index)).ask("who coordinates the coalition?")
    index.close()
    assert not answer.refused and len({c.article_id for c in answer.citations}) == 1
    assert "coordination conjointe" in answer.citations[0].quote
    assert {c.source for c in answer.citations[0].also_published_by} == {"Le Monde", "Libération"} - {
        answer.citations[0].source}


def test_published_by_names_each_source_once_and_falls_back_to_the_title():
    from rag.types import Copy, published_by

    copies = [Copy("a", "T1", source="AFP"), Copy("b", "T2", source="AFP"), Copy("c", "Un titre")]
    assert published_by(copies) == "AFP, « Un titre »"
    assert published_by([Copy(str(i), "t", source=f"S{i}") for i in range(7)], limit=5) == "S0, S1, S2, S3, S4 (+2)"
