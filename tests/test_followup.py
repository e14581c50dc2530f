"""Tests of rag.followup: which questions refer back to the conversation, and their standalone form."""

from __future__ import annotations

import pytest

from rag.chat import heuristic_standalone, previous_questions
from rag.followup import clarify_message, is_follow_up, needs_referent, standalone

# (question, is a follow-up, cannot stand alone without a conversation)
QUESTIONS = [
    # French: articles are not pronouns
    ("Combien de pays compte la coalition des volontaires ?", False, False),
    ("Qui dirige la coalition ?", False, False),
    ("Que dit le rapport sur les pays européens ?", False, False),
    ("Combien de personnes ont été tuées en mars ?", False, False),
    ("Où en est la réforme des retraites ?", False, False),
    ("Quel âge a Emmanuel Macron ?", False, False),
    # inverted subject pronouns with a subject of their own
    ("Quand la coalition a-t-elle été créée ?", False, False),
    ("Combien de soldats les pays européens enverront-ils en Ukraine ?", False, False),
    ("Les pays de l'OTAN ont-ils augmenté leur budget ?", False, False),
    ("Quand Keir Starmer a-t-il annoncé la coalition ?", False, False),
    ("Macron a-t-il démissionné ?", False, False),
    # impersonal "il"
    ("Y a-t-il des blessés ?", False, False),
    ("Combien de pays y a-t-il dans l'OTAN ?", False, False),
    ("Faut-il un visa pour aller au Canada ?", False, False),
    ("Il y a combien de pays dans la coalition ?", False, False),
    # French follow-ups: clitics before a verb, pronouns with no referent, continuations
    ("Qui l'a annoncé ?", True, True),
    ("Quand l'a-t-il dit ?", True, True),
    ("Combien en a-t-il ?", True, True),
    ("Où s'est-il rendu ?", True, True),
    ("Qui la dirige ?", True, True),
    ("Qu'en pense-t-il ?", True, True),
    ("Que lui reproche-t-on ?", True, True),
    ("Est-ce qu'il a démissionné ?", True, True),
    ("Depuis quand est-il maire ?", True, True),
    ("Et quand a-t-il pris ses fonctions ?", True, True),
    ("Quel est son âge ?", True, True),
    ("Pourquoi cela ?", True, True),
    ("Qui a dit ça ?", True, True),
    ("Pourquoi ?", True, True),
    ("Et en Allemagne ?", True, False),
    ("Et pour l'Espagne ?", True, False),
    ("Et le Royaume-Uni ?", True, False),
    ("Y aussi ?", True, True),
    # English
    ("How many countries are in the coalition of the willing?", False, False),
    ("Who leads the coalition and when was it created?", False, False),
    ("When did Macron say he would resign?", False, False),
    ("Is it true that the coalition was created in March?", False, False),
    ("How long does it take to train a soldier?", False, False),
    ("What happened this week in Ukraine?", False, False),
    ("What did he say?", True, True),
    ("What did he say about the pension reform?", True, True),
    ("How old is she?", True, True),
    # an object pronoun is not its own clause's subject: "them" is not the gendarmes
    ("Where did the gendarmes stop them?", True, True),
    ("Did the police release him?", True, True),
    ("What did Macron tell the mayor about him?", False, False),
    ("When was it created?", True, True),
    ("What does that mean?", True, True),
    ("Who said that?", True, True),
    ("What is their budget?", True, True),
    ("And when?", True, True),
    ("What about Spain?", True, False),
    ("Also in Germany?", True, False),
    # the indefinite "on" refers to no one
    ("Combien de centimètres de neige attendait-on dans le Gard ?", False, False),
    ("Que sait-on du suspect ?", False, False),
    ("Que sait-on de lui ?", True, True),
    # Spanish and German
    ("¿Cuántos países forman la coalición?", False, False),
    ("¿Quién lo dijo?", True, True),
    ("¿Y en Francia?", True, False),
    ("Wann wurde die Koalition gegründet?", False, False),
    ("Wann wurde die Koalition gegründet und wer leitet sie?", False, False),
    ("Was hat er gesagt?", True, True),
    ("Und in Spanien?", True, False),
]


@pytest.mark.parametrize("question, follow_up, needs", QUESTIONS, ids=[q for q, _, _ in QUESTIONS])
def test_is_follow_up_and_needs_referent(question, follow_up, needs):
    assert is_follow_up(question) is follow_up
    assert needs_referent(question) is needs


def test_the_language_can_be_given():
    # "y" is "and" in Spanish, a clitic in French
    assert is_follow_up("y en Francia", "es")
    assert not is_follow_up("Il y a combien de pays ?", "fr")


def test_standalone_carries_the_previous_question():
    assert (standalone("Et quand a-t-il pris ses fonctions ?", ["Qui est le maire de Marseille ?"])
            == "Et quand a-t-il pris ses fonctions ? (maire de Marseille)")
    assert standalone("What did he say?", ["Who is the French president?"]) == "What did he say? (French president)"
    out = standalone("Et qui l'a créée ?", ["Qui coordonne la coalition des volontaires ?"])
    assert out.startswith("Et qui l'a créée ? (") and "coalition des volontaires" in out


def test_standalone_leaves_standalone_questions_alone():
    # The app's example: it used to get "(Putin Trump meet)" appended.
    q = "Combien de pays compte la coalition des volontaires ?"
    assert standalone(q, ["When will Putin and Trump meet?"]) == q
    assert standalone("Qui l'a annoncé ?", []) == "Qui l'a annoncé ?"


def test_standalone_does_not_repeat_what_the_question_has():
    out = standalone("Et quand la coalition a-t-elle été créée ? Et elle ?", ["Qui coordonne la coalition ?"])
    assert out.count("coalition") == 1 and "coordonne" in out


def test_standalone_resolves_a_chain_of_follow_ups():
    history = ["Qui coordonne la coalition des volontaires ?", "Et quand a-t-elle été créée ?"]
    out = standalone("Et combien de pays en font partie ?", history)
    assert "coalition des volontaires" in out


def test_heuristic_standalone_is_kept_for_old_callers():
    assert "coalition" in heuristic_standalone("et qui l'a créée ?", "Qui coordonne la coalition ?")
    q = "Quelle est la date de la rencontre prévue entre Poutine et Trump en Alaska ?"
    assert heuristic_standalone(q, "who coordinates the coalition?") == q


def test_previous_questions_from_pairs_and_messages():
    assert previous_questions([("q1", "a1"), ("q2", "a2")]) == ["q1", "q2"]
    assert previous_questions([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]) == ["q1"]
    assert previous_questions(None) == []


@pytest.mark.parametrize("lang, start", [("fr", "De qui ou de quoi parlez-vous ?"),
                                         ("en", "Who or what does your question refer to?"),
                                         ("es", "¿De quién"), ("de", "Wen oder was"), ("it", "Who or what")])
def test_clarify_message(lang, start):
    assert clarify_message(lang).startswith(start)


def test_a_person_pronoun_takes_the_person_the_previous_answer_named():
    prev = "Who was the man mistakenly arrested in Glasgow because he was thought to be Xavier Dupont de Ligonnès?"
    answer = ("According to the article (quoted in French): « Interpellé à Glasgow, Guy Joao, un retraité "
              "français d'origine portugaise, est alors soupçonné d'être Xavier Dupont de Ligonnès. » [1]")
    out = standalone("How old is he?", [prev], previous_answer=answer)
    assert out.startswith("How old is he? (Guy Joao;")
    # no answer, or a question that does not refer to a person: the previous question's terms only
    assert "Guy Joao" not in standalone("How old is he?", [prev])
    assert "Guy Joao" not in standalone("And in Spain?", [prev], previous_answer=answer)


def test_the_assistant_passes_the_previous_answer():
    from rag.chat import previous_answer

    assert previous_answer([("q1", "a1"), ("q2", "a2")]) == "a2"
    assert previous_answer([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert previous_answer([]) == "" and previous_answer(None) == ""
