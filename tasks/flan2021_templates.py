"""Instruction templates of the FLAN 2021 catalog (the project's own wording).

Each function returns the template list of one dataset (or of a family of datasets that share
fields, e.g. the NLI datasets), at least 10 per dataset, varying the phrasing of the instruction
and where the input sits. The translation templates come in two halves, English -> X and
X -> English (5 each): a translation dataset's task uses both, its evaluation-only direction
tasks one half each. Option tasks put `{options_}` at the end of their inputs (FLAN's
OPTIONS block, or nothing in the no-options variant) and target `{answer}`, the option text.
Templates marked `inverted=True` ask the opposite task (e.g. write the question for an answer);
they are used for training only.

The fields each function reads are the fields the matching preprocessor in
`flanjax.tasks.flan2021` emits; `tests/test_catalog.py` checks every template against them.
"""
from __future__ import annotations

from flanjax.templates import Template


def _inv(inputs: str, targets: str) -> Template:
  return Template(inputs, targets, inverted=True)


# ----------------------------------------------------------------------------- NLI


def nli() -> list[Template]:
  """premise, hypothesis, options, answer (ANLI, CB, MNLI, RTE, SNLI, WNLI)."""
  return [
      Template("{premise}\n\nGiven the passage above, is it true that \"{hypothesis}\"?{options_}",
               "{answer}"),
      Template("Read the text and decide whether the claim follows from it.\n\nText: {premise}\n"
               "Claim: {hypothesis}{options_}", "{answer}"),
      Template("Premise: {premise}\nHypothesis: {hypothesis}\n\nDoes the premise entail the "
               "hypothesis?{options_}", "{answer}"),
      Template("If \"{premise}\" is true, can we conclude that \"{hypothesis}\"?{options_}",
               "{answer}"),
      Template("Consider this passage:\n{premise}\n\nAssuming the passage is accurate, must the "
               "following also hold? {hypothesis}{options_}", "{answer}"),
      Template("Statement: \"{hypothesis}\"\n\nIs this statement supported by the paragraph "
               "below?\n\n{premise}{options_}", "{answer}"),
      Template("Decide if the second sentence can be inferred from the first.\n\nFirst: {premise}\n"
               "Second: {hypothesis}{options_}", "{answer}"),
      Template("{premise}\n\nFrom what is written above, can one infer the sentence below?\n"
               "{hypothesis}{options_}", "{answer}"),
      Template("Does the statement \"{hypothesis}\" follow logically from the text \"{premise}\"?"
               "{options_}", "{answer}"),
      Template("Here is a short text: {premise}\nAnd here is a guess about it: {hypothesis}\n"
               "Is the guess entailed by the text?{options_}", "{answer}"),
      _inv("{premise}\n\nWrite a sentence such that the answer to \"does the text above entail "
           "it?\" is \"{answer}\".", "{hypothesis}"),
  ]


def qnli() -> list[Template]:
  """question, sentence, options, answer."""
  return [
      Template("Does the sentence \"{sentence}\" answer the question \"{question}\"?{options_}",
               "{answer}"),
      Template("Question: {question}\nSentence: {sentence}\n\nDoes the sentence contain the "
               "answer to the question?{options_}", "{answer}"),
      Template("{sentence}\n\nCan the question \"{question}\" be answered from the sentence "
               "above?{options_}", "{answer}"),
      Template("I want to know: {question}\nWould this sentence tell me? \"{sentence}\""
               "{options_}", "{answer}"),
      Template("Check whether the passage answers the question.\nPassage: {sentence}\n"
               "Question: {question}{options_}", "{answer}"),
      Template("{question}\n\nIs the following a good answer to the question above?\n{sentence}"
               "{options_}", "{answer}"),
      Template("Sentence: {sentence}\n\nQuestion: {question}\n\nDoes the sentence provide an "
               "answer?{options_}", "{answer}"),
      Template("Someone asked \"{question}\" and got the reply \"{sentence}\". Does the reply "
               "answer what was asked?{options_}", "{answer}"),
      Template("Is the answer to \"{question}\" found in the text below?\n\n{sentence}"
               "{options_}", "{answer}"),
      Template("Read this: {sentence}\nNow answer: does it respond to the question "
               "\"{question}\"?{options_}", "{answer}"),
  ]


# ----------------------------------------------------------------------------- Commonsense


def copa() -> list[Template]:
  """premise, question ("cause" / "effect"), options, answer."""
  return [
      Template("{premise}\n\nWhat is the more likely {question} of this?{options_}", "{answer}"),
      Template("Premise: {premise}\nWhich alternative is the more plausible {question}?"
               "{options_}", "{answer}"),
      Template("Choose the {question} that makes the most sense.\n\n{premise}{options_}",
               "{answer}"),
      Template("Here is a situation: \"{premise}\"\nPick the {question}.{options_}", "{answer}"),
      Template("{premise} Which of the following is the {question}?{options_}", "{answer}"),
      Template("Think about cause and effect. Given \"{premise}\", what is its {question}?"
               "{options_}", "{answer}"),
      Template("Select the best {question} for the event below.\nEvent: {premise}{options_}",
               "{answer}"),
      Template("What is the {question}?\n\n{premise}{options_}", "{answer}"),
      Template("Situation: {premise}\nQuestion: what is the {question}?\nAnswer:{options_}",
               "{answer}"),
      Template("Given the sentence \"{premise}\", identify the most plausible {question}."
               "{options_}", "{answer}"),
  ]


def hellaswag() -> list[Template]:
  """context, activity_label, options, answer."""
  return [
      Template("Continue the passage with the most sensible ending.\n\n{context}{options_}",
               "{answer}"),
      Template("{context}\n\nWhat is most likely to come next?{options_}", "{answer}"),
      Template("Topic: {activity_label}\n\n{context}\n\nHow does the text most likely continue?"
               "{options_}", "{answer}"),
      Template("Finish the following text about {activity_label}.\n\n{context}{options_}",
               "{answer}"),
      Template("Which ending fits best?\n\n{context}{options_}", "{answer}"),
      Template("{context}\n\nPick the most natural continuation.{options_}", "{answer}"),
      Template("Here is the start of a description: {context}\nChoose how it ends.{options_}",
               "{answer}"),
      Template("Complete the paragraph.\n\nParagraph: {context}{options_}", "{answer}"),
      Template("A text about \"{activity_label}\" begins like this: {context}\nWhat comes next?"
               "{options_}", "{answer}"),
      Template("{context}\n\nSelect the sentence that most plausibly follows.{options_}",
               "{answer}"),
      _inv("Write the beginning of a text about {activity_label} that could end like this: "
           "{answer}", "{context}"),
  ]


def piqa() -> list[Template]:
  """goal, options, answer."""
  return [
      Template("Goal: {goal}\n\nWhich method achieves this goal?{options_}", "{answer}"),
      Template("How would you do this? {goal}{options_}", "{answer}"),
      Template("Pick the most sensible way to accomplish the task.\n\nTask: {goal}{options_}",
               "{answer}"),
      Template("{goal}\n\nWhich solution is physically more plausible?{options_}", "{answer}"),
      Template("My goal: {goal} Which of these should I do?{options_}", "{answer}"),
      Template("Use common sense about the physical world. Goal: {goal}{options_}", "{answer}"),
      Template("What is the best way to do the following?\n{goal}{options_}", "{answer}"),
      Template("Here is an everyday goal: \"{goal}\". Choose the solution that works.{options_}",
               "{answer}"),
      Template("Task: {goal}\nWhich approach is correct?{options_}", "{answer}"),
      Template("Select the procedure that accomplishes this: {goal}{options_}", "{answer}"),
      _inv("Write a goal that the following procedure accomplishes.\n\n{answer}", "{goal}"),
  ]


def story_cloze() -> list[Template]:
  """context, options, answer."""
  return [
      Template("{context}\n\nChoose the best ending for the story.{options_}", "{answer}"),
      Template("Read the story and pick the sentence that ends it best.\n\n{context}{options_}",
               "{answer}"),
      Template("Story so far: {context}\n\nWhat happens next?{options_}", "{answer}"),
      Template("How does this story most likely end?\n\n{context}{options_}", "{answer}"),
      Template("{context}\n\nWhich sentence is the most coherent conclusion?{options_}",
               "{answer}"),
      Template("Complete the five-sentence story with a sensible last sentence.\n{context}"
               "{options_}", "{answer}"),
      Template("Here are the first four sentences of a story: {context}\nPick the fifth."
               "{options_}", "{answer}"),
      Template("Finish this short story.\n\n{context}{options_}", "{answer}"),
      Template("{context} What is the right ending?{options_}", "{answer}"),
      Template("Select the ending that fits the story below.\n\nStory: {context}{options_}",
               "{answer}"),
      _inv("Write the first four sentences of a story that ends with: \"{answer}\"",
           "{context}"),
  ]


# ----------------------------------------------------------------------------- Sentiment


def sentiment(noun: str) -> list[Template]:
  """text, options, answer; `noun` names the kind of text (e.g. "movie review")."""
  n = noun
  return [
      Template(f"{{text}}\n\nIs the sentiment of this {n} positive or negative?{{options_}}",
               "{answer}"),
      Template(f"What is the sentiment of the following {n}?\n\n{{text}}{{options_}}",
               "{answer}"),
      Template(f"{n.capitalize()}: {{text}}\n\nHow does the writer feel?{{options_}}",
               "{answer}"),
      Template(f"Classify the tone of this {n}.\n\n{{text}}{{options_}}", "{answer}"),
      Template(f"Read the {n} below and say whether it is favourable.\n\n{{text}}{{options_}}",
               "{answer}"),
      Template(f"{{text}}\n\nWould you say this {n} is positive or negative?{{options_}}",
               "{answer}"),
      Template(f"Determine the polarity of the {n}: \"{{text}}\"{{options_}}", "{answer}"),
      Template(f"Here is a {n}:\n{{text}}\nWhat attitude does it express?{{options_}}",
               "{answer}"),
      Template(f"Label the sentiment.\n{n.capitalize()}: {{text}}\nSentiment:{{options_}}",
               "{answer}"),
      Template(f"Does the following {n} express a good or a bad opinion?\n\n{{text}}"
               "{options_}", "{answer}"),
      _inv(f"Write a {{answer}} {n}.", "{text}"),
      _inv(f"Compose a short {n} whose sentiment is {{answer}}.", "{text}"),
  ]


# ----------------------------------------------------------------------------- Paraphrase


def paraphrase_pair() -> list[Template]:
  """sentence1, sentence2, options, answer (MRPC, PAWS)."""
  return [
      Template("Do these two sentences mean the same thing?\n\n{sentence1}\n{sentence2}"
               "{options_}", "{answer}"),
      Template("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nAre A and B paraphrases of "
               "each other?{options_}", "{answer}"),
      Template("\"{sentence1}\"\n\"{sentence2}\"\n\nDo the two sentences above convey the same "
               "meaning?{options_}", "{answer}"),
      Template("Is the second sentence a paraphrase of the first?\nFirst: {sentence1}\n"
               "Second: {sentence2}{options_}", "{answer}"),
      Template("{sentence1}\n\nCould the sentence above be rewritten as the one below without "
               "changing its meaning?\n\n{sentence2}{options_}", "{answer}"),
      Template("Check whether two sentences are equivalent.\n1. {sentence1}\n2. {sentence2}"
               "{options_}", "{answer}"),
      Template("Does \"{sentence2}\" say the same as \"{sentence1}\"?{options_}", "{answer}"),
      Template("Here are two sentences:\n{sentence1}\n{sentence2}\nDo they express the same "
               "information?{options_}", "{answer}"),
      Template("Compare the meanings of these sentences.\n\n{sentence1}\n\n{sentence2}\n\n"
               "Same meaning?{options_}", "{answer}"),
      Template("Are the following two statements semantically equivalent? \"{sentence1}\" and "
               "\"{sentence2}\"{options_}", "{answer}"),
  ]


def qqp() -> list[Template]:
  """question1, question2, options, answer."""
  return [
      Template("Are these two questions asking the same thing?\n\n{question1}\n{question2}"
               "{options_}", "{answer}"),
      Template("Question 1: {question1}\nQuestion 2: {question2}\n\nWould the two questions "
               "have the same answer?{options_}", "{answer}"),
      Template("{question1}\n{question2}\n\nAre the questions above duplicates?{options_}",
               "{answer}"),
      Template("Is \"{question2}\" a rephrasing of \"{question1}\"?{options_}", "{answer}"),
      Template("Two users posted these questions:\n- {question1}\n- {question2}\nShould they "
               "be merged as duplicates?{options_}", "{answer}"),
      Template("Do the following questions have the same meaning? {question1} / {question2}"
               "{options_}", "{answer}"),
      Template("First question: {question1}\n\nSecond question: {question2}\n\nSame intent?"
               "{options_}", "{answer}"),
      Template("Decide whether one answer would satisfy both questions.\n{question1}\n"
               "{question2}{options_}", "{answer}"),
      Template("{question1}\n\nIs that the same as asking \"{question2}\"?{options_}",
               "{answer}"),
      Template("Would you mark these as the same question?\nA: {question1}\nB: {question2}"
               "{options_}", "{answer}"),
      _inv("Write a question that asks the same thing as: {question1}", "{question2}"),
  ]


def stsb() -> list[Template]:
  """sentence1, sentence2, options ("0".."5"), answer."""
  return [
      Template("On a scale from 0 to 5, how similar are these sentences?\n\n{sentence1}\n"
               "{sentence2}{options_}", "{answer}"),
      Template("Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nRate their semantic "
               "similarity from 0 (unrelated) to 5 (same meaning).{options_}", "{answer}"),
      Template("{sentence1}\n{sentence2}\n\nHow close in meaning are the two sentences, from "
               "0 to 5?{options_}", "{answer}"),
      Template("Score the similarity of \"{sentence1}\" and \"{sentence2}\" on a 0-5 scale."
               "{options_}", "{answer}"),
      Template("How much do these two sentences overlap in meaning (0 = not at all, 5 = "
               "completely)?\nA: {sentence1}\nB: {sentence2}{options_}", "{answer}"),
      Template("Give a similarity score between 0 and 5.\n\n{sentence1}\n\n{sentence2}"
               "{options_}", "{answer}"),
      Template("Compare the sentences below and grade their similarity from 0 to 5.\n- "
               "{sentence1}\n- {sentence2}{options_}", "{answer}"),
      Template("\"{sentence1}\"\nOn a scale of 0 to 5, how well does this match \"{sentence2}\"?"
               "{options_}", "{answer}"),
      Template("Rate from 0 to 5: does \"{sentence2}\" mean the same as \"{sentence1}\"?"
               "{options_}", "{answer}"),
      Template("Semantic similarity task (0-5).\nFirst: {sentence1}\nSecond: {sentence2}\n"
               "Score:{options_}", "{answer}"),
  ]


# ----------------------------------------------------------------------------- Closed-book QA


def multiple_choice_qa() -> list[Template]:
  """question, options, answer (ARC)."""
  return [
      Template("{question}{options_}", "{answer}"),
      Template("Answer the following science question.\n\n{question}{options_}", "{answer}"),
      Template("Question: {question}\n\nWhat is the correct answer?{options_}", "{answer}"),
      Template("Pick the right answer to this question: {question}{options_}", "{answer}"),
      Template("{question}\n\nChoose the best answer.{options_}", "{answer}"),
      Template("Here is a question from a school exam: {question}\nWhich choice is correct?"
               "{options_}", "{answer}"),
      Template("Test your knowledge. {question}{options_}", "{answer}"),
      Template("Select the answer that correctly completes or answers this: {question}"
               "{options_}", "{answer}"),
      Template("Q: {question}\nA:{options_}", "{answer}"),
      Template("Which option answers the question \"{question}\"?{options_}", "{answer}"),
      _inv("Write a science exam question whose correct answer is \"{answer}\".", "{question}"),
  ]


def closed_book_qa(kind: str) -> list[Template]:
  """question, answer; `kind` describes the questions (e.g. "trivia")."""
  return [
      Template("{question}", "{answer}"),
      Template("Answer this question: {question}", "{answer}"),
      Template("Q: {question}\nA:", "{answer}"),
      Template(f"Here is a {kind} question. {{question}}", "{answer}"),
      Template("Please answer: {question}", "{answer}"),
      Template("What is the answer to the following question?\n\n{question}", "{answer}"),
      Template("{question}\n\nGive a short answer.", "{answer}"),
      Template(f"Answer the {kind} question below from memory.\n{{question}}", "{answer}"),
      Template("Question: {question}\nAnswer:", "{answer}"),
      Template("I have a question: {question} Do you know the answer?", "{answer}"),
      _inv(f"Write a {kind} question whose answer is \"{{answer}}\".", "{question}"),
      _inv("The answer is: {answer}. What could the question be?", "{question}"),
  ]


# ----------------------------------------------------------------------------- Struct to text


def common_gen() -> list[Template]:
  """concepts, target."""
  return [
      Template("Write a sentence that uses all of these words: {concepts}", "{target}"),
      Template("Concepts: {concepts}\n\nMake a sentence about everyday life containing all of "
               "the concepts.", "{target}"),
      Template("Use the following words in one sentence: {concepts}.", "{target}"),
      Template("{concepts}\n\nCombine the words above into a natural sentence.", "{target}"),
      Template("Generate a sentence mentioning: {concepts}", "{target}"),
      Template("Create a short, plausible sentence that includes the words {concepts}.",
               "{target}"),
      Template("Keywords: {concepts}\nSentence:", "{target}"),
      Template("Describe a scene involving {concepts}.", "{target}"),
      Template("Here is a list of concepts: {concepts}. Write one sentence that connects them.",
               "{target}"),
      Template("Form a sentence from these words: {concepts}", "{target}"),
      _inv("Which key concepts appear in this sentence?\n\n{target}", "{concepts}"),
      _inv("List the main words of the sentence \"{target}\", separated by commas.",
           "{concepts}"),
  ]


def dart() -> list[Template]:
  """tripleset, target."""
  return [
      Template("Triples: {tripleset}\n\nWrite a sentence that states these facts.", "{target}"),
      Template("Turn this data into a sentence: {tripleset}", "{target}"),
      Template("{tripleset}\n\nExpress the triples above as fluent English.", "{target}"),
      Template("Generate a sentence describing the following facts.\n\n{tripleset}",
               "{target}"),
      Template("Here are some facts in subject, relation, object form: {tripleset}. Write them "
               "as a sentence.", "{target}"),
      Template("Data: {tripleset}\nSentence:", "{target}"),
      Template("Verbalise this structured data: {tripleset}", "{target}"),
      Template("Write one or two sentences that contain all of this information: {tripleset}",
               "{target}"),
      Template("Describe the following in words.\n{tripleset}", "{target}"),
      Template("Convert the knowledge-graph triples into text.\n\n{tripleset}", "{target}"),
      _inv("Extract the facts in this sentence as triples.\n\n{target}", "{tripleset}"),
  ]


def e2e_nlg() -> list[Template]:
  """meaning_representation, target."""
  return [
      Template("Attributes: {meaning_representation}\n\nWrite a sentence describing this "
               "restaurant.", "{target}"),
      Template("Describe a restaurant with the following properties: {meaning_representation}",
               "{target}"),
      Template("{meaning_representation}\n\nTurn the data above into a restaurant description.",
               "{target}"),
      Template("Write a short review-style sentence from these facts: {meaning_representation}",
               "{target}"),
      Template("Here is structured data about a place to eat: {meaning_representation}. Put it "
               "into words.", "{target}"),
      Template("Data: {meaning_representation}\nDescription:", "{target}"),
      Template("Generate text for a restaurant guide using: {meaning_representation}",
               "{target}"),
      Template("Write a sentence that mentions all of this information.\n\n"
               "{meaning_representation}", "{target}"),
      Template("Create a natural-language description of the venue: {meaning_representation}",
               "{target}"),
      Template("Express these key-value pairs as a sentence: {meaning_representation}",
               "{target}"),
      _inv("List the attributes of the restaurant described here.\n\n{target}",
           "{meaning_representation}"),
  ]


def web_nlg() -> list[Template]:
  """input_string, target."""
  return [
      Template("Facts: {input_string}\n\nWrite a sentence that contains these facts.",
               "{target}"),
      Template("Generate a sentence about the following data: {input_string}", "{target}"),
      Template("{input_string}\n\nWrite the data above as fluent text.", "{target}"),
      Template("Turn these triples into English: {input_string}", "{target}"),
      Template("Here is some information: {input_string}. Describe it in a sentence.",
               "{target}"),
      Template("Data: {input_string}\nText:", "{target}"),
      Template("Write a short paragraph that expresses all of this: {input_string}",
               "{target}"),
      Template("Verbalise the following knowledge-base entries.\n\n{input_string}", "{target}"),
      Template("Describe, in natural language, the facts {input_string}", "{target}"),
      Template("Produce a sentence from this structured input:\n{input_string}", "{target}"),
      _inv("What facts does this sentence state? Write them as triples.\n\n{target}",
           "{input_string}"),
  ]


# ----------------------------------------------------------------------------- Translation


def translation_en_to_x() -> list[Template]:
  """lang1, lang2, sent1, sent2 (sent1 is in lang1, English; sent2 in lang2): English -> lang2.

  The evaluation-only direction tasks (`flan2021_<key>_en_to_<lang>`) use these alone.
  """
  return [
      Template("Translate from {lang1} to {lang2}:\n\n{sent1}", "{sent2}"),
      Template("{sent1}\n\nTranslate the text above into {lang2}.", "{sent2}"),
      Template("How do you say \"{sent1}\" in {lang2}?", "{sent2}"),
      Template("{lang1}: {sent1}\n{lang2}:", "{sent2}"),
      Template("Please render this sentence in {lang2}: {sent1}", "{sent2}"),
  ]


def translation_x_to_en() -> list[Template]:
  """lang1, lang2, sent1, sent2 (as `translation_en_to_x`): lang2 -> English (lang1).

  The evaluation-only direction tasks (`flan2021_<key>_<lang>_to_en`) use these alone.
  """
  return [
      Template("Translate to {lang1}:\n\n{sent2}", "{sent1}"),
      Template("{sent2}\n\nWhat does this mean in {lang1}?", "{sent1}"),
      Template("{lang2} text: {sent2}\n{lang1} translation:", "{sent1}"),
      Template("Write the {lang1} version of this {lang2} sentence: {sent2}", "{sent1}"),
      Template("Here is a sentence in {lang2}. Translate it into {lang1}.\n\n{sent2}",
               "{sent1}"),
  ]


def translation() -> list[Template]:
  """lang1, lang2, sent1, sent2; both directions (the translation datasets' tasks, which train
  on both): `translation_en_to_x()` then `translation_x_to_en()`, 10 templates."""
  return translation_en_to_x() + translation_x_to_en()


# ----------------------------------------------------------------------------- Reading comp.


def bool_q() -> list[Template]:
  """title, text, question, options, answer."""
  return [
      Template("{text}\n\nBased on the passage, {question}?{options_}", "{answer}"),
      Template("Read the article about {title} and answer the question.\n\n{text}\n\n"
               "Question: {question}?{options_}", "{answer}"),
      Template("Passage: {text}\n\nIs it true that {question}?{options_}", "{answer}"),
      Template("{title}\n\n{text}\n\nAnswer yes or no: {question}?{options_}", "{answer}"),
      Template("Question: {question}?\n\nUse this text to answer: {text}{options_}", "{answer}"),
      Template("Here is a text on {title}:\n{text}\n\nAccording to it, {question}?{options_}",
               "{answer}"),
      Template("{text}\n\n{question}?{options_}", "{answer}"),
      Template("Answer the question using the paragraph below. {question}?\n\n{text}"
               "{options_}", "{answer}"),
      Template("Article: {title}\n{text}\n\nDoes the article say that {question}?{options_}",
               "{answer}"),
      Template("Given this information: \"{text}\"\nCan you tell me whether {question}?"
               "{options_}", "{answer}"),
      _inv("{text}\n\nWrite a yes/no question about this passage whose answer is "
           "\"{answer}\".", "{question}"),
  ]


def multirc() -> list[Template]:
  """paragraph, question, response, options, answer."""
  return [
      Template("{paragraph}\n\nQuestion: {question}\nResponse: {response}\n\nIs the response "
               "correct?{options_}", "{answer}"),
      Template("Read the paragraph and judge the answer.\n\n{paragraph}\n\nQ: {question}\n"
               "Proposed answer: {response}{options_}", "{answer}"),
      Template("Paragraph: {paragraph}\n\nBased on the paragraph, is \"{response}\" a correct "
               "answer to \"{question}\"?{options_}", "{answer}"),
      Template("{paragraph}\n\nSomeone answered the question \"{question}\" with \"{response}\". "
               "Are they right?{options_}", "{answer}"),
      Template("Question: {question}\nCandidate answer: {response}\n\nCheck it against this "
               "text:\n{paragraph}{options_}", "{answer}"),
      Template("{paragraph}\n\nAfter reading the text, would you say that \"{response}\" "
               "answers \"{question}\"?{options_}", "{answer}"),
      Template("Does the paragraph support the answer \"{response}\" to the question "
               "\"{question}\"?\n\n{paragraph}{options_}", "{answer}"),
      Template("Text: {paragraph}\nQuestion: {question}\nIs \"{response}\" correct?{options_}",
               "{answer}"),
      Template("{paragraph}\n\n{question}\nIs this a valid answer: {response}?{options_}",
               "{answer}"),
      Template("Verify the answer using the passage.\nPassage: {paragraph}\nQuestion: "
               "{question}\nAnswer: {response}{options_}", "{answer}"),
  ]


def openbookqa() -> list[Template]:
  """question, fact, options, answer."""
  return [
      Template("Fact: {fact}\n\nUse the fact to answer the question: {question}{options_}",
               "{answer}"),
      Template("{question}{options_}", "{answer}"),
      Template("Knowing that \"{fact}\", how would you complete this: {question}{options_}",
               "{answer}"),
      Template("Question: {question}\n\nWhich answer is correct?{options_}", "{answer}"),
      Template("{fact}\n\nGiven the statement above, {question}{options_}", "{answer}"),
      Template("Answer this elementary science question.\n{question}{options_}", "{answer}"),
      Template("Here is a fact: {fact}\nAnd here is a question: {question}\nPick the answer."
               "{options_}", "{answer}"),
      Template("Complete the sentence: {question}{options_}", "{answer}"),
      Template("Using common science knowledge, choose the best answer.\n\n{question}"
               "{options_}", "{answer}"),
      Template("Background: {fact}\nQ: {question}{options_}", "{answer}"),
      _inv("Fact: {fact}\n\nWrite a question that tests this fact, with the answer "
           "\"{answer}\".", "{question}"),
  ]


def squad(unanswerable: bool = False) -> list[Template]:
  """title, context, question, answer (SQuAD v1/v2); v2 mentions the "unanswerable" reply."""
  note = " If it cannot be answered from the text, reply \"unanswerable\"." if unanswerable else ""
  return [
      Template(f"Read the passage and answer the question.{note}\n\n{{context}}\n\n"
               "Question: {question}", "{answer}"),
      Template("{context}\n\nQ: {question}", "{answer}"),
      Template(f"Answer a question about {{title}}.{note}\n\n{{context}}\n\n{{question}}",
               "{answer}"),
      Template("Context: {context}\nQuestion: {question}\nAnswer:", "{answer}"),
      Template(f"Question: {{question}}\n\nFind the answer in this text:{note}\n{{context}}",
               "{answer}"),
      Template("Here is an article on {title}.\n\n{context}\n\nUsing the article, {question}",
               "{answer}"),
      Template(f"{{context}}\n\nBased on the text above, {{question}}{note}", "{answer}"),
      Template("I have a question about {title}: {question}\nThis text may help: {context}",
               "{answer}"),
      Template("Extract the answer to \"{question}\" from the passage.\n\n{context}",
               "{answer}"),
      Template(f"Passage: {{context}}\n\nWhat is the answer to this question? {{question}}{note}",
               "{answer}"),
      _inv("{context}\n\nWrite a question about the passage whose answer is \"{answer}\".",
           "{question}"),
      _inv("Read this text about {title} and ask a question that it answers.\n\n{context}",
           "{question}"),
  ]


def drop() -> list[Template]:
  """context, question, answer."""
  return [
      Template("{context}\n\nAnswer this question about the passage: {question}", "{answer}"),
      Template("Passage: {context}\nQuestion: {question}\nAnswer:", "{answer}"),
      Template("Read the text and work out the answer (it may need counting or arithmetic)."
               "\n\n{context}\n\n{question}", "{answer}"),
      Template("Question: {question}\n\nUse the following passage:\n{context}", "{answer}"),
      Template("{context}\n\n{question}", "{answer}"),
      Template("Answer based on the paragraph below. {question}\n\n{context}", "{answer}"),
      Template("Here is a passage: {context}\nNow answer: {question}", "{answer}"),
      Template("Context: {context}\n\nQ: {question}\nA:", "{answer}"),
      Template("After reading the passage, reason about the numbers and dates to answer "
               "\"{question}\".\n\n{context}", "{answer}"),
      Template("{context}\n\nGive a short answer: {question}", "{answer}"),
      _inv("{context}\n\nWrite a question about this passage whose answer is {answer}.",
           "{question}"),
  ]


# ----------------------------------------------------------------------------- RC + commonsense


def cosmos_qa() -> list[Template]:
  """context, question, options, answer."""
  return [
      Template("{context}\n\nQuestion: {question}{options_}", "{answer}"),
      Template("Read the text and answer the question with common sense.\n\n{context}\n\n"
               "{question}{options_}", "{answer}"),
      Template("Context: {context}\nQ: {question}\nWhich answer is the most plausible?"
               "{options_}", "{answer}"),
      Template("{question}\n\nUse this passage: {context}{options_}", "{answer}"),
      Template("Here is a short story: {context}\n\nBased on it, {question}{options_}",
               "{answer}"),
      Template("{context}\n\nAnswer the question below, reading between the lines.\n"
               "{question}{options_}", "{answer}"),
      Template("Passage: {context}\n\nPick the best answer: {question}{options_}", "{answer}"),
      Template("Think about what is likely true given this text.\n{context}\n{question}"
               "{options_}", "{answer}"),
      Template("{context} {question}{options_}", "{answer}"),
      Template("Question about the text below: {question}\n\n{context}{options_}", "{answer}"),
      _inv("{context}\n\nWrite a question about this text whose answer is \"{answer}\".",
           "{question}"),
  ]


def record() -> list[Template]:
  """passage, query, options, answer."""
  return [
      Template("{passage}\n\nComplete the sentence that continues the article:\n\n{query}"
               "{options_}", "{answer}"),
      Template("Read the news story and fill in the rest of the last sentence.\n\n{passage}\n\n"
               "{query}{options_}", "{answer}"),
      Template("Article: {passage}\n\nHow does this sentence end? {query}{options_}",
               "{answer}"),
      Template("{passage}\n\nWhich continuation of \"{query}\" is consistent with the article?"
               "{options_}", "{answer}"),
      Template("Finish the sentence based on the passage.\n\nPassage: {passage}\nSentence: "
               "{query}{options_}", "{answer}"),
      Template("{query}\n\nComplete the text above using this article:\n{passage}{options_}",
               "{answer}"),
      Template("Here is a news article: {passage}\n\nWhat comes next: {query}{options_}",
               "{answer}"),
      Template("{passage}\n\nContinue the following so that it agrees with the story.\n{query}"
               "{options_}", "{answer}"),
      Template("Context: {passage}\n\nUnfinished sentence: {query}\nCompletion:{options_}",
               "{answer}"),
      Template("Use the article to choose the right ending.\n\n{passage}\n\n{query}...{options_}",
               "{answer}"),
  ]


# ----------------------------------------------------------------------------- Coreference


def definite_pronoun_resolution() -> list[Template]:
  """sentence, pronoun, options, answer."""
  return [
      Template("{sentence}\n\nWho or what does \"{pronoun}\" refer to in the sentence above?"
               "{options_}", "{answer}"),
      Template("In the sentence \"{sentence}\", what is \"{pronoun}\"?{options_}", "{answer}"),
      Template("Sentence: {sentence}\nPronoun: {pronoun}\nWhich noun does the pronoun stand "
               "for?{options_}", "{answer}"),
      Template("Resolve the pronoun \"{pronoun}\".\n\n{sentence}{options_}", "{answer}"),
      Template("{sentence}\n\nIn this sentence, \"{pronoun}\" means:{options_}", "{answer}"),
      Template("Read the sentence and identify the referent of \"{pronoun}\": {sentence}"
               "{options_}", "{answer}"),
      Template("Who is \"{pronoun}\" in the following sentence?\n{sentence}{options_}",
               "{answer}"),
      Template("Here is a sentence: {sentence}\nThe word \"{pronoun}\" refers to which of "
               "these?{options_}", "{answer}"),
      Template("Pronoun resolution task.\n\nText: {sentence}\nTarget pronoun: {pronoun}"
               "{options_}", "{answer}"),
      Template("{sentence}\n\nWhat does the pronoun \"{pronoun}\" point to?{options_}",
               "{answer}"),
  ]


def wsc() -> list[Template]:
  """text, noun, pronoun, options ("no", "yes"), answer (SuperGLUE WSC: is the pronoun the
  noun?)."""
  return [
      Template("{text}\n\nIn the passage above, does \"{pronoun}\" refer to \"{noun}\"?"
               "{options_}", "{answer}"),
      Template("Read the text and answer the question.\n\n{text}\n\nIs \"{noun}\" what "
               "\"{pronoun}\" stands for?{options_}", "{answer}"),
      Template("Text: {text}\nPronoun: {pronoun}\nCandidate: {noun}\n\nDoes the pronoun "
               "refer to the candidate?{options_}", "{answer}"),
      Template("{text}\n\nWho or what is \"{pronoun}\" here? Is it \"{noun}\"?{options_}",
               "{answer}"),
      Template("Coreference question. In \"{text}\", do \"{noun}\" and \"{pronoun}\" name "
               "the same thing?{options_}", "{answer}"),
      Template("Does \"{pronoun}\" mean \"{noun}\" in the following text?\n\n{text}"
               "{options_}", "{answer}"),
      Template("{text}\n\nIs it right that \"{pronoun}\" is used to talk about \"{noun}\"?"
               "{options_}", "{answer}"),
      Template("Consider this: {text}\n\nCould \"{pronoun}\" be replaced by \"{noun}\" "
               "without changing the meaning?{options_}", "{answer}"),
      Template("Passage: {text}\n\nQuestion: is \"{pronoun}\" another way of referring to "
               "\"{noun}\"?{options_}", "{answer}"),
      Template("In the text below, decide whether \"{noun}\" is the referent of "
               "\"{pronoun}\".\n\n{text}{options_}", "{answer}"),
  ]


def sentence_completion_coref() -> list[Template]:
  """context, options, answer (Winogrande, WSC273): options are the possible continuations."""
  return [
      Template("How does this sentence most sensibly end?\n\n{context} ___{options_}",
               "{answer}"),
      Template("{context} ...\n\nChoose the continuation that makes sense.{options_}",
               "{answer}"),
      Template("Complete the sentence: {context}{options_}", "{answer}"),
      Template("Which ending is correct?\n{context}{options_}", "{answer}"),
      Template("Fill in the rest of the sentence so that it is logical.\n\n{context}"
               "{options_}", "{answer}"),
      Template("{context}\n\nWhat is the most plausible way to finish this?{options_}",
               "{answer}"),
      Template("Here is the beginning of a sentence: \"{context}\". Pick its ending.{options_}",
               "{answer}"),
      Template("Use common sense to complete the text.\n{context}{options_}", "{answer}"),
      Template("Sentence start: {context}\nEnding:{options_}", "{answer}"),
      Template("Select the ending in which the right person or thing is mentioned.\n\n"
               "{context}{options_}", "{answer}"),
  ]


# ----------------------------------------------------------------------------- Misc


def coqa() -> list[Template]:
  """text, numbered_questions, numbered_answers."""
  return [
      Template("{text}\n\nAnswer these questions in order:\n{numbered_questions}",
               "{numbered_answers}"),
      Template("Read the story and answer the numbered questions.\n\n{text}\n\n"
               "{numbered_questions}", "{numbered_answers}"),
      Template("Questions:\n{numbered_questions}\n\nText:\n{text}\n\nAnswer each question.",
               "{numbered_answers}"),
      Template("{text}\n\n{numbered_questions}\n\nNumbered answers:", "{numbered_answers}"),
      Template("Here is a passage followed by a conversation's questions. Reply to each one.\n\n"
               "{text}\n\n{numbered_questions}", "{numbered_answers}"),
      Template("Passage: {text}\n\nGive a short answer to every question below.\n"
               "{numbered_questions}", "{numbered_answers}"),
      Template("Answer the questions about the text, one per line.\n{numbered_questions}\n\n"
               "{text}", "{numbered_answers}"),
      Template("{text}\n\nBased on the passage, what are the answers to:\n{numbered_questions}",
               "{numbered_answers}"),
      Template("Conversational QA.\nStory: {text}\nQuestions:\n{numbered_questions}\nAnswers:",
               "{numbered_answers}"),
      Template("Read the following and then answer the list of questions.\n\n{text}\n\n"
               "{numbered_questions}", "{numbered_answers}"),
      _inv("{text}\n\nWrite questions about the passage that these answers respond to:\n"
           "{numbered_answers}", "{numbered_questions}"),
  ]


def quac() -> list[Template]:
  """title, background, context, question, answer."""
  return [
      Template("Background: {background}\n\nSection: {title}\n{context}\n\nQuestion: "
               "{question}", "{answer}"),
      Template("{context}\n\nAnswer by quoting the text: {question}", "{answer}"),
      Template("Read about {title}.\n\n{background}\n\n{context}\n\n{question}", "{answer}"),
      Template("Question: {question}\n\nFind the span that answers it:\n{context}", "{answer}"),
      Template("Topic: {title}\nContext: {context}\nQ: {question}\nA:", "{answer}"),
      Template("{background}\n{context}\n\nUsing the text above, {question}", "{answer}"),
      Template("Here is part of an article about {title}: {context}\n\nAnswer this question "
               "with a passage from the article: {question}", "{answer}"),
      Template("Extract the answer to \"{question}\" from this text.\n\n{context}", "{answer}"),
      Template("{context}\n\n{question}", "{answer}"),
      Template("Context: {background}\n\nParagraph: {context}\n\nWhat does the paragraph say "
               "about this: {question}", "{answer}"),
  ]


def trec() -> list[Template]:
  """text, options, answer."""
  return [
      Template("What kind of answer does this question expect?\n\n{text}{options_}",
               "{answer}"),
      Template("Question: {text}\n\nIs the answer a description, an entity, an abbreviation, "
               "a person, a number or a location?{options_}", "{answer}"),
      Template("Classify the question by the type of its answer: {text}{options_}", "{answer}"),
      Template("{text}\n\nWhich category does the answer to this question belong to?"
               "{options_}", "{answer}"),
      Template("Determine the answer type of the following question.\n{text}{options_}",
               "{answer}"),
      Template("If you had to answer \"{text}\", what type of thing would your answer be?"
               "{options_}", "{answer}"),
      Template("Question classification.\nQuestion: {text}\nType:{options_}", "{answer}"),
      Template("Here is a question: {text}\nWhat is it asking for?{options_}", "{answer}"),
      Template("{text}\n\nIs this question asking about a description, entity, abbreviation, "
               "human, numeric value or location?{options_}", "{answer}"),
      Template("Label the question with the kind of answer it wants: {text}{options_}",
               "{answer}"),
  ]


def cola() -> list[Template]:
  """sentence, options, answer."""
  return [
      Template("Is the following sentence grammatically acceptable?\n\n{sentence}{options_}",
               "{answer}"),
      Template("{sentence}\n\nWould a linguist judge this sentence acceptable English?"
               "{options_}", "{answer}"),
      Template("Sentence: \"{sentence}\"\nIs it well-formed?{options_}", "{answer}"),
      Template("Check the grammar of this sentence: {sentence}{options_}", "{answer}"),
      Template("Does this sentence follow the rules of English grammar? {sentence}{options_}",
               "{answer}"),
      Template("{sentence}\n\nRate the sentence above for grammatical acceptability."
               "{options_}", "{answer}"),
      Template("Here is a sentence: {sentence}\nIs it acceptable or unacceptable?{options_}",
               "{answer}"),
      Template("Decide whether a native speaker would accept this sentence.\n{sentence}"
               "{options_}", "{answer}"),
      Template("Grammaticality judgement: {sentence}{options_}", "{answer}"),
      Template("Read the sentence and say if it is linguistically acceptable.\n\n{sentence}"
               "{options_}", "{answer}"),
  ]


def wic() -> list[Template]:
  """sentence1, sentence2, word, options, answer."""
  return [
      Template("Does the word \"{word}\" mean the same thing in these two sentences?\n\n"
               "{sentence1}\n{sentence2}{options_}", "{answer}"),
      Template("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nIs \"{word}\" used with "
               "the same meaning in A and B?{options_}", "{answer}"),
      Template("{sentence1}\n{sentence2}\n\nIn the sentences above, does \"{word}\" have the "
               "same sense?{options_}", "{answer}"),
      Template("Word: {word}\nFirst use: {sentence1}\nSecond use: {sentence2}\nSame meaning?"
               "{options_}", "{answer}"),
      Template("Compare how \"{word}\" is used in \"{sentence1}\" and in \"{sentence2}\"."
               "{options_}", "{answer}"),
      Template("Here is a word and two contexts. Decide whether the word's meaning changes.\n"
               "{word}\n1. {sentence1}\n2. {sentence2}{options_}", "{answer}"),
      Template("{sentence1}\n\n{sentence2}\n\nDo both sentences use the word {word} in the "
               "same way?{options_}", "{answer}"),
      Template("Word sense task. Is the meaning of \"{word}\" identical in the two sentences "
               "below?\n{sentence1}\n{sentence2}{options_}", "{answer}"),
      Template("In \"{sentence1}\" and \"{sentence2}\", what can we say about the meaning of "
               "\"{word}\"?{options_}", "{answer}"),
      Template("Determine whether \"{word}\" carries the same meaning here:\n- {sentence1}\n"
               "- {sentence2}{options_}", "{answer}"),
  ]


def math_dataset() -> list[Template]:
  """question, answer."""
  return [
      Template("{question}", "{answer}"),
      Template("Solve this problem: {question}", "{answer}"),
      Template("Math question: {question}\nAnswer:", "{answer}"),
      Template("What is the solution?\n\n{question}", "{answer}"),
      Template("{question}\n\nGive only the final answer.", "{answer}"),
      Template("Work out the answer to the following. {question}", "{answer}"),
      Template("Problem: {question}\nSolution:", "{answer}"),
      Template("Can you solve this linear equation problem? {question}", "{answer}"),
      Template("Compute: {question}", "{answer}"),
      Template("Here is an algebra exercise. {question} What is the answer?", "{answer}"),
  ]


def fix_punct() -> list[Template]:
  """no_punct, answer."""
  return [
      Template("Add the missing punctuation to this text: {no_punct}", "{answer}"),
      Template("{no_punct}\n\nRewrite the text above with correct punctuation.", "{answer}"),
      Template("This sentence lost its punctuation: \"{no_punct}\". Restore it.", "{answer}"),
      Template("Punctuate the following.\n\n{no_punct}", "{answer}"),
      Template("Text without punctuation: {no_punct}\nWith punctuation:", "{answer}"),
      Template("Please put the commas, full stops and other marks back into: {no_punct}",
               "{answer}"),
      Template("Fix the punctuation.\n{no_punct}", "{answer}"),
      Template("{no_punct}\n\nHow should this be punctuated?", "{answer}"),
      Template("Insert punctuation where it belongs in the sentence below.\n\n{no_punct}",
               "{answer}"),
      Template("Make this text readable by adding punctuation: {no_punct}", "{answer}"),
      _inv("Remove all punctuation from this text: {answer}", "{no_punct}"),
  ]


# ----------------------------------------------------------------------------- Summarization


def summarize(noun: str) -> list[Template]:
  """text, summary; `noun` names the document kind (e.g. "news article")."""
  n = noun
  return [
      Template(f"Summarize this {n}:\n\n{{text}}", "{summary}"),
      Template(f"{{text}}\n\nWrite a short summary of the {n} above.", "{summary}"),
      Template(f"{n.capitalize()}: {{text}}\n\nSummary:", "{summary}"),
      Template(f"What is this {n} about? Answer in a sentence or two.\n\n{{text}}",
               "{summary}"),
      Template(f"Condense the following {n} into its key points.\n\n{{text}}", "{summary}"),
      Template(f"{{text}}\n\nIn brief, what does the {n} say?", "{summary}"),
      Template(f"Here is a {n}:\n{{text}}\n\nWrite a concise summary.", "{summary}"),
      Template(f"Give a TL;DR of the {n} below.\n\n{{text}}", "{summary}"),
      Template(f"Read the {n} and summarise it.\n{{text}}", "{summary}"),
      Template(f"{{text}}\n\nSum up the main ideas of this {n}.", "{summary}"),
      _inv(f"Write a {n} based on this summary: {{summary}}", "{text}"),
  ]


def aeslc() -> list[Template]:
  """body, subject."""
  return [
      Template("Write a subject line for this email:\n\n{body}", "{subject}"),
      Template("{body}\n\nWhat would be a good subject for the email above?", "{subject}"),
      Template("Email: {body}\nSubject:", "{subject}"),
      Template("Suggest a short title for the following message.\n\n{body}", "{subject}"),
      Template("Here is the body of an email: {body}\nGive it a subject line.", "{subject}"),
      Template("{body}\n\nSummarize this email in a few words for its subject.", "{subject}"),
      Template("Generate the subject of an email that reads: \"{body}\"", "{subject}"),
      Template("What is this email about? Answer with a subject line.\n{body}", "{subject}"),
      Template("Compose a subject line.\n\nBody: {body}", "{subject}"),
      Template("{body}\n\nSubject line:", "{subject}"),
      _inv("Write an email with the subject \"{subject}\".", "{body}"),
      _inv("Subject: {subject}\n\nWrite the body of this email.", "{body}"),
  ]


def newsroom() -> list[Template]:
  """title, text, summary."""
  return [
      Template("{title}\n\n{text}\n\nWrite a short summary of this article.", "{summary}"),
      Template("Summarize the article titled \"{title}\".\n\n{text}", "{summary}"),
      Template("Article: {text}\n\nSummary:", "{summary}"),
      Template("Headline: {title}\nStory: {text}\n\nWhat is the story about?", "{summary}"),
      Template("Give a one or two sentence summary.\n\n{text}", "{summary}"),
      Template("{text}\n\nHow would you sum up this news story?", "{summary}"),
      Template("Here is a news article, \"{title}\": {text}\nWrite its summary.", "{summary}"),
      Template("Condense this article into a brief summary.\n{text}", "{summary}"),
      Template("{title}\n{text}\n\nTL;DR:", "{summary}"),
      Template("Read the following and write what it is mainly about.\n\n{text}", "{summary}"),
      _inv("Write a news article titled \"{title}\" based on this summary: {summary}",
           "{text}"),
      _inv("Article: {text}\n\nWrite a headline for this article.", "{title}"),
  ]


def samsum() -> list[Template]:
  """dialogue, summary."""
  return [
      Template("Summarize this conversation:\n\n{dialogue}", "{summary}"),
      Template("{dialogue}\n\nWhat happened in the chat above?", "{summary}"),
      Template("Dialogue:\n{dialogue}\n\nSummary:", "{summary}"),
      Template("Write a brief summary of the following messages.\n\n{dialogue}", "{summary}"),
      Template("Here is a chat between friends:\n{dialogue}\nDescribe what they talked about.",
               "{summary}"),
      Template("{dialogue}\n\nSum up the conversation in a sentence or two.", "{summary}"),
      Template("What is the gist of this dialogue?\n{dialogue}", "{summary}"),
      Template("Read the messages and write a third-person summary.\n\n{dialogue}",
               "{summary}"),
      Template("Conversation:\n{dialogue}\nBriefly, what was decided or said?", "{summary}"),
      Template("Give a TL;DR of this chat.\n\n{dialogue}", "{summary}"),
      _inv("Write a short chat conversation that matches this summary: {summary}",
           "{dialogue}"),
  ]


def ag_news() -> list[Template]:
  """title, text, options, answer."""
  return [
      Template("{title}\n\n{text}\n\nWhat is this news article about?{options_}", "{answer}"),
      Template("Which section of a newspaper does this story belong to?\n\n{title}: {text}"
               "{options_}", "{answer}"),
      Template("Headline: {title}\nSummary: {text}\n\nTopic:{options_}", "{answer}"),
      Template("Classify the topic of the following article.\n{title}\n{text}{options_}",
               "{answer}"),
      Template("{text}\n\nChoose the best category for this text.{options_}", "{answer}"),
      Template("Is this a story about world news, sports, business or science and "
               "technology?\n\n{title}. {text}{options_}", "{answer}"),
      Template("Here is a news snippet: \"{text}\"\nWhat is its subject area?{options_}",
               "{answer}"),
      Template("Article title: {title}\nWhich topic does it cover?{options_}", "{answer}"),
      Template("{title} -- {text}\n\nPick the topic.{options_}", "{answer}"),
      Template("Read the news and label its category.\n\n{text}{options_}", "{answer}"),
      _inv("Write a short {answer} news headline.", "{title}"),
  ]


def opinion_rotten_tomatoes() -> list[Template]:
  """movie, first_review, numbered_reviews, critic_consensus."""
  return [
      Template("Reviews of {movie}:\n{numbered_reviews}\n\nWrite the critics' consensus.",
               "{critic_consensus}"),
      Template("{numbered_reviews}\n\nSummarize what the critics think of the movie.",
               "{critic_consensus}"),
      Template("Here are some critic reviews of the film {movie}.\n\n{numbered_reviews}\n\n"
               "Overall verdict:", "{critic_consensus}"),
      Template("Combine these movie reviews into a single summary opinion.\n\n"
               "{numbered_reviews}", "{critic_consensus}"),
      Template("What do critics generally say about {movie}? Use the reviews below.\n"
               "{numbered_reviews}", "{critic_consensus}"),
      Template("Movie: {movie}\nReviews:\n{numbered_reviews}\nConsensus:",
               "{critic_consensus}"),
      Template("Read the reviews and write a one-sentence consensus.\n\n{numbered_reviews}",
               "{critic_consensus}"),
      Template("{numbered_reviews}\n\nBased on these reviews, how was {movie} received?",
               "{critic_consensus}"),
      Template("Write a short critical summary of {movie} from these opinions:\n"
               "{numbered_reviews}", "{critic_consensus}"),
      Template("Reviews:\n{numbered_reviews}\n\nTL;DR of the critics' opinion:",
               "{critic_consensus}"),
      _inv("Critics' consensus on {movie}: {critic_consensus}\n\nWrite a review that agrees "
           "with it.", "{first_review}"),
  ]


def opinion_idebate() -> list[Template]:
  """debate_name, argument_sentences, claim."""
  return [
      Template("Debate: {debate_name}\n\nArgument:\n{argument_sentences}\n\nWhat claim does "
               "this argument support?", "{claim}"),
      Template("{argument_sentences}\n\nSummarize the argument above in one claim.", "{claim}"),
      Template("Here is an argument from a debate on \"{debate_name}\".\n{argument_sentences}\n"
               "State its main point.", "{claim}"),
      Template("Write the claim that these sentences argue for.\n\n{argument_sentences}",
               "{claim}"),
      Template("Topic: {debate_name}\nSentences:\n{argument_sentences}\nClaim:", "{claim}"),
      Template("What is the thesis of the following argument?\n{argument_sentences}",
               "{claim}"),
      Template("Condense this debating point into a single sentence.\n\n{argument_sentences}",
               "{claim}"),
      Template("{argument_sentences}\n\nIn the debate \"{debate_name}\", which position do "
               "these sentences defend?", "{claim}"),
      Template("Read the argument and write a short headline claim for it.\n"
               "{argument_sentences}", "{claim}"),
      Template("Debate motion: {debate_name}\n{argument_sentences}\n\nThe argument in one "
               "sentence:", "{claim}"),
      _inv("Write an argument for the claim \"{claim}\" in the debate \"{debate_name}\".",
           "{argument_sentences}"),
  ]


def wiki_lingua() -> list[Template]:
  """source, target."""
  return [
      Template("Summarize these instructions:\n\n{source}", "{target}"),
      Template("{source}\n\nWrite a short summary of the how-to text above.", "{target}"),
      Template("How-to article: {source}\n\nSummary:", "{target}"),
      Template("What are the main steps described here?\n\n{source}", "{target}"),
      Template("Condense this guide into a few sentences.\n{source}", "{target}"),
      Template("{source}\n\nIn brief, what should you do?", "{target}"),
      Template("Here is a section of a how-to guide: {source}\nSum it up.", "{target}"),
      Template("Give a TL;DR of the following instructions.\n\n{source}", "{target}"),
      Template("Read the tips and write a concise summary.\n{source}", "{target}"),
      Template("{source}\n\nSummarize the advice above.", "{target}"),
      _inv("Write detailed how-to instructions that expand on this summary: {target}",
           "{source}"),
  ]
