"""The answer stage without the real model: reader features, the bundled reader,
intents, refusal, and the assistant's shapes of answer over a hashing embedder."""

from __future__ import annotations

import numpy as np
import pytest

import rag
from rag.chat import Assistant
from rag.config import AnswerConfig
from rag.errors import ConfigError
from rag.intent import classify, question_parts, topic_of
from rag.reader import AnswerReader, Reader, default_reader, question_kind
from rag.reader.features import FEATURES, Candidate, featurize, is_question, sentence_facts
from rag.refusal import RefusalPolicy, missing_anchors
from rag.types import Hit


@pytest.mark.parametrize("question, kind", [
    ("Quand la coalition a-t-elle été créée ?", "when"),
    ("En quelle année le pont a-t-il été construit ?", "when"),
    ("When did the strike start?", "when"),
    ("Où s'est déroulé le sommet ?", "where"),
    ("Dans quelle ville le festival a-t-il lieu ?", "where"),
    ("Where was the suspect arrested?", "where"),
    ("Combien de pays compte la coalition ?", "count"),
    ("How many people died?", "count"),
    ("Quel âge avait la victime ?", "count"),
    ("Qui a annoncé la création de la coalition ?", "who"),
    ("Who coordinates the coalition?", "who"),
    ("Comment s'appelait le skieur tué par un sapin ?", "who"),
    ("What was the name of the volunteer firefighter?", "who"),
    ("Quel est le nom de famille de la lycéenne ?", "who"),
    ("Pourquoi la grève a-t-elle été reconduite ?", "why"),
    ("Why was the match postponed?", "why"),
    ("Comment le suspect a-t-il pris la fuite ?", "how"),
    ("Quel nom porte le navire ?", "what"),
    ("What did the minister announce?", "what"),
])
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def test_a_question_sentence_is_recognised():
    assert is_question("Pourquoi une telle décision ?")
    assert is_question("Faut-il s'en inquiéter ? »")
    assert not is_question("La décision a été prise lundi.")


def hit(article_id="a", title="Grève à la SNCF", text="", score=0.8, start=0, date=None, chunk_id=1):
    return Hit(article_id, title, date, "Test", None, chunk_id, score, text, start, start + len(text))


def cands(sentences, h=None, dense=None):
    h = h or hit(text=" ".join(sentences))
    out, pos = [], 0
    for i, s in enumerate(sentences):
        c = Candidate(h, 0, pos, pos + len(s), s, (dense or [0.85] * len(sentences))[i],
                      prev=i - 1, next=i + 1 if i + 1 < len(sentences) else -1, facts=sentence_facts(s, "fr"))
        out.append(c)
        pos += len(s) + 1
    return out


def test_features_have_one_column_each_and_see_the_answer_type():
    cs = cands(["La grève a été très suivie par les cheminots de la région.",
                "Elle a commencé le 12 juin 2019 à Lyon."])
    x = featurize("Quand la grève a-t-elle commencé ?", "fr", cs, cross=False)
    assert x.shape == (2, len(FEATURES))
    col = FEATURES.index("when_x_date")
    assert x[0, col] == 0 and x[1, col] == 1
    assert x[:, FEATURES.index("q_when")].tolist() == [1, 1]


@pytest.mark.parametrize("question, expected", [
    ("Quand la grève a-t-elle commencé ?", [0, 1, 0]),     # a date
    ("Combien de trains ont été annulés ?", [0, 1, 0]),     # a number the question does not give
    ("Qui a appelé à la grève ?", [0, 1, 1]),               # a name the question does not give
    ("Pourquoi la grève a-t-elle commencé ?", [0, 0, 1]),   # a cause
    ("Que dit l'article sur la grève ?", [1, 1, 1]),        # no one kind of answer
])
def test_answer_type_match(question, expected):
    from rag.reader.features import answer_type_match

    cs = cands(["La grève a été très suivie par les cheminots de la région.",
                "Elle a commencé le 12 juin 2019 à l'appel de Philippe Martinez, et 300 trains ont été annulés.",
                "Les syndicats manifestent car ils refusent la réforme, selon Laurent Berger."])
    assert answer_type_match(featurize(question, "fr", cs, cross=False)).tolist() == expected


@pytest.fixture(scope="module")
def real_reader(model_cache):
    from rag.embedding import get_embedder

    return AnswerReader.for_embedder(get_embedder("e5-small", cache_dir=model_cache))


@pytest.mark.slow
@pytest.mark.parametrize("question", [
    "Combien de syndicalistes ont appelé à la grève ?",
    # Known weakness of reader v2 (README): its cross-encoder follows the words the question
    # shares with a sentence ("grève des cheminots") more than the kind of answer asked.
    pytest.param("Quand la grève des cheminots a-t-elle commencé ?", marks=pytest.mark.xfail(
        strict=True, reason="known weakness of reader v2 (README): the on-topic sentence wins for 'quand' here")),
    pytest.param("Qui a appelé à la grève des cheminots ?", marks=pytest.mark.xfail(
        strict=True, reason="known weakness of reader v2 (README): the on-topic sentence wins for 'qui' here")),
])
def test_the_bundled_reader_prefers_the_sentence_with_the_kind_of_answer_asked(real_reader, question):
    assert real_reader.cross is not None and real_reader.combine is not None
    sentences = ["La grève des cheminots a fortement perturbé le trafic ferroviaire dans la région.",
                 "Le mouvement a débuté le 5 décembre 2019, à l'appel de Philippe Martinez et de 180 syndicalistes."]
    p = real_reader.score(question, "fr", cands(sentences, hit(text=""), dense=[0.86, 0.86]), False)
    assert p[1] > p[0]


def test_a_rhetorical_question_never_answers_and_its_successor_may():
    reader = AnswerReader(default_reader())
    cs = cands(["Pourquoi la grève a-t-elle été reconduite ?",
                "Les syndicats réclament le retrait de la réforme des retraites, expliquent-ils."],
               dense=[0.90, 0.87])
    p = reader.score("Pourquoi la grève a-t-elle été reconduite ?", "fr", cs, False)
    assert p[0] == 0 and p[1] > 0


def test_reader_probabilities_are_probabilities():
    cs = cands(["Le président a été élu en 2017.", "Il a nommé un nouveau Premier ministre."])
    p = default_reader().score("Qui a été élu ?", "fr", cs, cross=False)
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_reader_weights_round_trip_and_refuse_foreign_files(tmp_path):
    r = default_reader()
    path = tmp_path / "r.npz"
    r.save(path)
    again = Reader.load(path)
    x = np.random.default_rng(0).normal(size=(5, len(FEATURES))).astype(np.float32)
    assert np.allclose(r.probabilities(x), again.probabilities(x))
    bad = tmp_path / "bad.npz"
    np.savez(bad, w1=np.zeros((3, 3)))
    with pytest.raises(ConfigError):
        Reader.load(bad)
    with pytest.raises(ConfigError):
        Reader.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("question, kind", [
    ("Combien de personnes sont mortes, et qui étaient les victimes ?", "multi"),
    ("How many people died and who were the victims?", "multi"),
    ("Quand et où a eu lieu le sommet ?", "multi"),
    ("Résume l'article sur la grève SNCF", "summary"),
    ("Summarize the article about the storm", "summary"),
    ("Quels articles parlent de la grève ?", "articles"),
    ("Which articles mention Emmanuel Macron?", "articles"),
    ("Qui a annoncé la création de la coalition ?", "fact"),
    ("Who coordinates the coalition of the willing?", "fact"),
    ("Qui sont Tom et Jerry ?", "fact"),
    ("Le chat de la voisine et le chien sont-ils amis ?", "fact"),  # no comma: one yes/no question
])
def test_intent(question, kind):
    assert classify(question).kind == kind


def test_parts_and_topic():
    assert question_parts("Quand et où a eu lieu le sommet ?") == ["Quand a eu lieu le sommet ?",
                                                                   "où a eu lieu le sommet ?"]
    assert question_parts("How many died, and who were the victims?") == ["How many died?", "who were the victims?"]
    # a preposition before the second interrogative, "d'où", a yes/no part, a bare "où" at the end
    assert question_parts("Où a-t-il été arrêté, et dans quelle prison a-t-il été incarcéré ?") == [
        "Où a-t-il été arrêté ?", "dans quelle prison a-t-il été incarcéré ?"]
    assert question_parts("On what date was he stopped, and on what date did he die?") == [
        "On what date was he stopped?", "on what date did he die?"]
    assert question_parts("Quel âge avaient les enfants, et d'où venait la famille ?") == [
        "Quel âge avaient les enfants ?", "d'où venait la famille ?"]
    assert question_parts("Quel âge avait le suspect, et son arme était-elle réelle ?") == [
        "Quel âge avait le suspect ?", "son arme était-elle réelle ?"]
    assert question_parts("Quand a-t-il été vu pour la dernière fois, et où ?") == [
        "Quand a-t-il été vu pour la dernière fois ?", "où a-t-il été vu pour la dernière fois ?"]
    assert topic_of("Quels articles parlent de la grève SNCF ?") == "grève SNCF"
    assert topic_of("Which articles mention Emmanuel Macron?") == "Emmanuel Macron"
    assert topic_of("Résume l'article sur le Loto") == "Loto"


def test_refusal_uses_the_probability_and_missing_anchors():
    policy = RefusalPolicy(0.3, 0.2)
    text = ["La Coupe du monde a été remportée par la France en 2018."]
    assert not policy.decide("Qui a gagné la Coupe du monde 2018 ?", 0.6, text, cross=False).refuse
    d = policy.decide("Qui a gagné la Coupe du monde 2022 ?", 0.6, text, cross=False)
    assert d.refuse and d.missing == ("2022",)
    assert policy.decide("Qui a gagné ?", 0.25, text, cross=True).refuse is False
    assert policy.decide("Qui a gagné ?", 0.25, text, cross=False).refuse is True
    # Names are only checked within one language ("Putin" is "Poutine").
    assert missing_anchors("What did Putin say?", ["Vladimir Poutine a parlé."], with_names=False) == []
    assert missing_anchors("Qu'a dit Poutine ?", ["Vladimir Poutine a parlé."]) == []


# -- the assistant over a hashing embedder (no model) -------------------------------------------------

ARTICLES = [
    rag.Article(id="greve-1", title="Grève à la SNCF", date="2019-12-05", source="Test",
                text="La grève à la SNCF a paralysé le trafic ferroviaire jeudi.\n"
                     "Pourquoi les cheminots font-ils grève ?\n"
                     "Ils protestent contre la réforme des retraites présentée par le gouvernement.\n"
                     "Le mouvement a commencé le 5 décembre 2019 à l'appel de la CGT.\n"
                     "Selon la direction, 90 % des TGV ont été annulés."),
    rag.Article(id="greve-2", title="La grève SNCF continue", date="2019-12-20", source="Test",
                text="La grève SNCF entre dans sa troisième semaine.\n"
                     "Les voyageurs cherchent des solutions pour les fêtes.\n"
                     "La CGT appelle à poursuivre le mouvement pendant les vacances."),
    rag.Article(id="meteo", title="Tempête en Bretagne", date="2020-02-10", source="Test",
                text="La tempête Ciara a touché la Bretagne dimanche.\n"
                     "Des rafales de 150 km/h ont été relevées à Brest.\n"
                     "Plus de 100 000 foyers ont été privés d'électricité."),
]


@pytest.fixture
def assistant(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(ARTICLES)
    # No refusal: the hashing embedder's cosines are not the real model's; shapes are what is tested.
    cfg = AnswerConfig(refusal_threshold=-1, refusal_threshold_cross=-1, topic_threshold=-1, topic_threshold_cross=-1,
                       second_quote_ratio=2.0)
    return Assistant(rag.Retriever(index), config=cfg)


def check(answer, index):
    for c in answer.citations:
        art = index.get_article(c.article_id)
        assert art.text[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.text


def test_a_factual_answer_is_one_quote_and_never_a_question(assistant):
    a = assistant.ask("Pourquoi les cheminots font-ils grève ?")
    assert not a.refused and len(a.citations) == 1
    assert not a.citations[0].quote.endswith("?")
    check(a, assistant.retriever.index)


def test_a_second_quote_only_adds_the_kind_of_answer_the_first_lacks(assistant):
    from dataclasses import replace

    from rag.evidence import Evidence

    text = ("La grève des cheminots a fortement perturbé le trafic. Elle a commencé le 5 décembre. "
            "Les syndicats ont appelé à poursuivre le mouvement.")
    h = hit(text=text)
    spans = [(0, 54), (55, 85), (86, len(text))]

    def ev(i, score, typed):
        s, e = spans[i]
        return Evidence(h, s, e, text[s:e], score, 0.8, 0.0, typed)

    q = "Quand la grève a-t-elle commencé ?"
    cfg = Assistant(assistant.retriever, config=replace(assistant.config, second_quote_ratio=0.5))
    one, _ = cfg._fact(q, "fr", [ev(1, 0.6, True), ev(0, 0.5, False)], False)
    assert [c.quote for c in one.citations] == ["Elle a commencé le 5 décembre."]  # the first has the date
    two, _ = cfg._fact(q, "fr", [ev(0, 0.6, False), ev(1, 0.4, True)], False)
    assert [c.quote for c in two.citations] == [text[0:54], "Elle a commencé le 5 décembre."]
    weak, _ = cfg._fact(q, "fr", [ev(0, 0.6, False), ev(1, 0.2, True)], False)
    assert len(weak.citations) == 1  # the second is far less likely: not quoted
    untyped, _ = cfg._fact(q, "fr", [ev(0, 0.6, False), ev(2, 0.6, False)], False)
    assert len(untyped.citations) == 1  # the second adds no date either
    for d in (one, two):
        for c in d.citations:
            assert text[c.start:c.end] == c.quote


def test_a_multi_part_question_gets_one_quote_per_part(assistant):
    a = assistant.ask("Quand la grève SNCF a-t-elle commencé, et combien de TGV ont été annulés ?")
    assert 1 <= len(a.citations) <= 2
    check(a, assistant.retriever.index)


def test_a_summary_is_the_lead_then_central_sentences_in_order(assistant):
    a = assistant.ask("Résume l'article sur la tempête en Bretagne")
    assert a.text.startswith("Résumé de l'article « Tempête en Bretagne »")
    starts = [c.start for c in a.citations]
    assert starts == sorted(starts) and starts[0] == 0
    assert {c.article_id for c in a.citations} == {"meteo"} and len(a.citations) <= 4
    check(a, assistant.retriever.index)


def test_which_articles_lists_the_matching_articles_newest_first(assistant):
    a = assistant.ask("Quels articles parlent de la grève SNCF ?")
    ids = [c.article_id for c in a.citations]
    assert ids == ["greve-2", "greve-1"]
    assert "2 articles" in a.text and "meteo" not in ids
    check(a, assistant.retriever.index)


def test_k_is_checked_once_with_a_clear_message(assistant):
    with pytest.raises(rag.InputError, match="k must be"):
        assistant.ask("Qui ?", k=0)


def test_a_pronoun_only_question_without_history_asks_what_it_refers_to(assistant):
    a = assistant.ask("Quand l'a-t-il annoncé ?")
    assert a.refused and not a.citations and "?" in a.text
    assert a.notice and "does not name" in a.notice
    # With a conversation before it, the same question is rewritten and answered.
    b = assistant.ask("Et quand a-t-elle commencé ?", history=[("Pourquoi la grève SNCF ?", "")])
    assert b.standalone_question != "Et quand a-t-elle commencé ?"


def test_a_french_question_with_articles_is_not_taken_for_a_follow_up(assistant):
    q = "Combien de TGV ont été annulés pendant la grève SNCF ?"
    a = assistant.ask(q, history=[("Où la tempête Ciara a-t-elle frappé ?", "")])
    assert a.standalone_question == q


class _FakeCross:
    """Stands in for the cross-encoder: a fixed logit per sentence text."""

    def __init__(self, logits: dict[str, float]):
        self.table = logits
        self.seen: list[str] = []

    def logits(self, pairs):
        self.seen += [b for _, b in pairs]
        return np.array([self.table[b.split("\n", 1)[-1]] for _, b in pairs], dtype=np.float32)


def test_the_cross_encoder_reads_only_the_first_candidates_by_cosine_and_decides_their_order():
    sentences = [f"La phrase numéro {i} parle de la grève des cheminots." for i in range(8)]
    sentences[6] = "Faut-il s'en inquiéter ?"
    cs = cands(sentences, dense=[0.80 + 0.01 * i for i in range(8)])
    fake = _FakeCross({s: (5.0 if i == 5 else -1.0) for i, s in enumerate(sentences)})
    reader = AnswerReader(default_reader(), fake, combine=(1.0, 0.0, 0.0, 0.0), top=3)
    p, order = reader.read("Quand la grève a-t-elle commencé ?", "fr", cs, False)
    # the three best cosines that are not questions: 7, 5, 4 (6 is a question)
    assert sorted(s.split("\n", 1)[-1] for s in fake.seen) == sorted(sentences[i] for i in (7, 5, 4))
    assert p[6] == 0 and order[6] == -np.inf  # a question never answers
    assert int(np.argmax(order)) == 5 and int(np.argmax(p)) == 5
    unread = [0, 1, 2, 3]
    assert max(p[unread]) < min(p[[7, 5, 4]]) and max(order[unread]) < min(order[[7, 5, 4]])
    assert list(np.argsort(-order[unread])) == [3, 2, 1, 0]  # the rest in cosine order


def test_sentences_holding_what_the_question_requires_are_read_beyond_the_top():
    sentences = [f"La phrase numéro {i} parle de la grève des cheminots." for i in range(8)]
    sentences[1] = "Le cheminot de 57 ans a cessé la grève."
    cs = cands(sentences, dense=[0.80 + 0.01 * i for i in range(8)])
    fake = _FakeCross({s: (5.0 if i == 1 else -1.0) for i, s in enumerate(sentences)})
    reader = AnswerReader(default_reader(), fake, combine=(1.0, 0.0, 0.0, 0.0), top=3)
    p, order, _ = reader.read_typed("Quel âge a le cheminot ?", "fr", cs, False, also=lambda t: "57 ans" in t)
    assert sentences[1] in [s.split("\n", 1)[-1] for s in fake.seen]  # read, though 7th by cosine
    assert int(np.argmax(order)) == 1
    fake.seen.clear()
    reader.read_typed("Quel âge a le cheminot ?", "fr", cs, False)
    assert sentences[1] not in [s.split("\n", 1)[-1] for s in fake.seen]


def test_the_type_of_answer_asked_moves_the_order():
    sentences = ["La grève des cheminots a fortement perturbé le trafic.",
                 "Le mouvement a débuté le 5 décembre 2019 dans toute la France."]
    cs = cands(sentences, dense=[0.87, 0.86])
    flat = _FakeCross({s: 0.0 for s in sentences})
    reader = AnswerReader(default_reader(), flat, combine=(1.0, 10.0, 1.0, -9.0), top=6)
    p, order = reader.read("Quand la grève a-t-elle commencé ?", "fr", cs, False)
    assert int(np.argmax(order)) == 1  # the date, though its cosine is lower
    p, order = reader.read("Que dit l'article de la grève ?", "fr", cs, False)
    assert int(np.argmax(order)) == 0  # no type asked: the cosine decides


def test_a_combination_of_the_old_form_is_refused():
    with pytest.raises(ConfigError, match="retrain"):
        AnswerReader(default_reader(), _FakeCross({}), combine=(1.0, 0.0, 0.0), top=3)


def test_the_year_of_an_articles_date_is_no_missing_anchor(assistant):
    # "2020" is in no text of the storm article, only in its date: the question names nothing it lacks.
    texts = assistant._article_texts(["meteo"])
    assert missing_anchors("Combien de foyers privés d'électricité en 2020 ?", texts) == []
    assert missing_anchors("Combien de foyers privés d'électricité en 2019 ?", texts) == ["2019"]
