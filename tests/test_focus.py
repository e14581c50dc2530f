"""What an answer must hold (rag.focus): the question's focus and the sentences that hold it."""

import pytest

import rag
from rag.chat import Assistant
from rag.config import AnswerConfig
from rag.focus import question_focus


@pytest.mark.parametrize("question, kind", [
    ("Quel âge a l'homme interpellé à Versailles ?", "age"),
    ("À quel âge est mort le sherpa ?", "age"),
    ("How old was the driver?", "age"),
    ("Combien a coûté le déplacement en hélicoptère du ministre ?", "money"),
    ("Quel montant d'indemnisation a été promis aux agriculteurs ?", "money"),
    ("How much did the city pay for the statue?", "money"),
    ("Combien d'euros a-t-il reçus ?", "money"),
    ("What share of the vote did Sud-Rail get?", "share"),
    ("Quel pourcentage des conducteurs était en grève ?", "share"),
    ("À quelle heure l'incendie s'est-il déclaré ?", "clock"),
    ("At what time did the fire break out?", "clock"),
    ("Combien de tonnes de produits ont brûlé ?", "unit"),
    ("Since when has the Lubrizol factory been in operation?", "since"),
    ("Depuis quand l'usine est-elle en activité ?", "since"),
])
def test_question_focus_kinds(question, kind):
    focus = question_focus(question)
    assert focus is not None and focus.kind == kind


@pytest.mark.parametrize("question", [
    "Combien de personnes vivent à Lyon ?",  # people: any number of any people answers
    "How many times did he say it?",
    "Combien de fois a-t-il récidivé ?",
    "Combien de temps a duré la grève ?",
    "Qui a remporté le Tour de France ?",
    "What time frame does the war cover?",
    "Quel prix a-t-il obtenu à Cannes ?",  # an award, not a price
    "What amount of the world's carbon is stored in the forest?",
])
def test_no_focus(question):
    assert question_focus(question) is None


@pytest.mark.parametrize("question, yes, no", [
    ("Quel âge a l'homme interpellé ?", "l'homme de 57 ans a renoncé à son projet",
     "Un homme a été interpellé dimanche 24 février à Versailles."),
    ("Quel âge a l'homme de 37 ans ?", "sa mère, âgée de 70 ans, a été secourue", "l'homme de 37 ans a été interpellé"),
    ("How old was Manning?", "Mit 39 Jahren ist er der älteste Quarterback.", "Er spielte in Denver."),
    ("Combien a dû payer le passager ?", "il a écopé de 70 000 yuans d'amende, soit 9 000 euros",
     "Le Chinois de 25 ans est alors détenu quinze jours en garde à vue."),
    ("Combien coûterait la solution ?", "elle va coûter quelques millions", "elle est applicable dès maintenant"),
    ("What share of the vote did they get?", "Sud-Rail avait récolté 17% des voix", "Sud-Rail appelle à la grève"),
    ("À quelle heure l'incendie s'est-il déclaré ?", "Vers 2h30, un incendie s'est déclaré",
     "Un incendie s'est déclaré mardi 16 avril"),
    ("Combien de tonnes de produits ont brûlé ?", "plus de 5.000 tonnes de produits ont brûlé",
     "la suie est une combinaison d'additifs, 2 semaines après"),
    ("Combien de foyers étaient privés de courant ?", "50 000 foyers touchés", "la tempête a touché 3 régions"),
    ("Depuis quand l'usine est-elle en activité ?", "L'usine Lubrizol, en activité depuis 1954, emploie 400 salariés.",
     "Vers 2h30, un incendie s'est déclaré dans un entrepôt de l'usine."),
    ("How long has he lived in Lyon?", "Il vit à Lyon depuis dix ans.", "Depuis quelques jours, il ne sort plus."),
])
def test_holds(question, yes, no):
    focus = question_focus(question)
    assert focus.holds(yes, question)
    assert not focus.holds(no, question)


@pytest.mark.parametrize("question, lang, yes, no", [
    ("Sur quelle île se trouve le village menacé ?", None, "l'iceberg dérive près de l'île d'Innarsuit",
     "Les habitants de l'île ont été évacués vendredi."),
    ("Quel article du règlement a justifié l'amende ?", None, "l'amende est justifiée par l'article 6 du règlement",
     "le jeune homme ignorait l'article du règlement"),
    ("In which commune did the rave party take place?", "fr", "sur la commune de Hures-la-Parade",
     "la commune a porté plainte"),
    ("Combien de personnes ont été interpellées à Paris ?", None, "où 148 personnes ont été interpellées",
     "148 personnes ont manifesté à Paris"),
    ("Combien de personnes ont été légèrement blessées ?", None,
     "Dans le Bas-Rhin, six personnes ont été légèrement blessées et prises en charge",
     "Six personnes ont été évacuées, et les pompiers ont ensuite soigné les blessés"),
    ("How many people were injured in the protest?", "fr", "les violences qui ont fait 263 blessés",
     "263 personnes ont manifesté"),
    ("How many criminal convictions did he have?", "fr", "un passé judiciaire lourd avec 27 condamnations",
     "il a été condamné 2 fois"),
    ("Combien de centimètres de neige attendait-on ?", None, "Entre 20 et 40 cm de neige sont attendus.",
     "La neige est attendue dans 20 départements."),
])
def test_holds_in_context(question, lang, yes, no):
    focus = question_focus(question, lang)
    assert focus.holds(yes, question)
    assert not focus.holds(no, question)


def test_english_unit_over_french_text():
    focus = question_focus("How many households were still without power?", "fr")
    assert focus.kind == "unit"
    assert focus.holds("lundi midi, 90.000 foyers étaient encore privés d'électricité", "")
    assert not focus.holds("la tempête Ciara a frappé lundi 10 février", "")
    # a counted noun the table does not know is not checked
    assert question_focus("How many gizmos were sold?", "fr") is None


def test_strictness():
    assert question_focus("Quel âge a-t-il ?").strict
    assert question_focus("Combien a coûté le voyage ?").strict
    assert question_focus("Combien de tonnes ont brûlé ?").strict  # a unit of measure
    assert not question_focus("Combien de foyers étaient privés de courant ?").strict


ARTICLES = [
    rag.Article(id="versailles", title="Versailles : un homme voulait attenter à la vie du président", date="2019-02-25",
                source="Test",
                text="Un homme a été interpellé dimanche à Versailles, soupçonné de vouloir attenter à la vie du président.\n"
                     "Il avait pris un taxi vers le palais présidentiel dans la soirée.\n"
                     "Interpellé à Versailles, l'homme de 57 ans voulait attenter à la vie du président, soupçonné par la police.\n"
                     "Le voyage en taxi jusqu'au palais a été payé par un ami."),
]


@pytest.fixture
def assistant(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(ARTICLES)
    # The hashing embedder's feature scorer puts the lead far ahead: let any candidate replace it.
    yield Assistant(rag.Retriever(index), config=AnswerConfig(refusal_threshold=-1, refusal_threshold_cross=-1,
                                                               second_quote_ratio=0.05))
    index.close()


def test_an_age_question_quotes_the_sentence_with_the_age(assistant):
    answer = assistant.ask("Quel âge a l'homme interpellé à Versailles, soupçonné de vouloir attenter à la vie du président ?")
    assert not answer.refused, answer.text
    assert "57 ans" in answer.citations[0].quote


def test_a_cost_question_with_no_amount_anywhere_is_refused(assistant):
    answer = assistant.ask("Combien a coûté le voyage en taxi de l'homme jusqu'au palais ?")
    assert answer.refused, answer.text


def test_an_article_list_keeps_the_articles_nearly_as_close_as_the_first(hash_config, monkeypatch):
    from dataclasses import replace

    import rag.chat

    articles = [
        rag.Article(id=f"rave{i}", title=title, date=f"2020-08-1{i}", source="Test", text=text)
        for i, (title, text) in enumerate([
            ("Sur le causse Méjean", "La rave party illégale en Lozère a réuni des milliers de personnes."),
            ("Les départs s'accélèrent sur le causse", "La rave party illégale de Lozère se termine, les départs accélèrent."),
            ("Fête de la musique à Paris", "La fête de la musique a réuni des milliers de personnes à Paris."),
        ])]
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add(articles)
    assistant = Assistant(rag.Retriever(index))
    topic = "rave party illégale de Lozère"
    scores = {}
    for h in assistant.retriever.retrieve(topic, k=10):
        scores[h.article_id] = max(scores.get(h.article_id, -1.0), h.score)
    first, second = sorted(("rave0", "rave1"), key=lambda a: -scores[a])
    gap = scores[first] - scores[second]
    # only the closest article passes the threshold; the other is listed when it is within the margin
    assistant.config = replace(assistant.config, topic_threshold=scores[first] - 1e-4)
    question = f"Quels articles couvrent la {topic} ?"
    monkeypatch.setattr(rag.chat, "LIST_MARGIN", gap + 0.01)
    answer = assistant.ask(question)
    assert not answer.refused, answer.text
    assert {c.article_id for c in answer.citations} == {"rave0", "rave1"}
    monkeypatch.setattr(rag.chat, "LIST_MARGIN", gap / 2)
    assert {c.article_id for c in assistant.ask(question).citations} == {first}
    index.close()
