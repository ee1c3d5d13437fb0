"""The offline collection's tasks: `offline_<family>`, registered through register_tfds_task.

Data: the local TFDS builder in flanjax.offline ("flanjax_offline/<family>:<offline.VERSION>",
now 1.1.0), prepared on first use into flanjax.offline.data_dir(). Vocabulary:
flanjax.vocab.offline_vocabulary(). Templates: >= 10 per family in the project's own wording;
some families have inverted ones.
"""
import os

from flanjax import offline
from flanjax.templates import Template as T

TEMPLATES = {
    "sentiment": [
        T("{text}\nIs this review positive or negative?{options_}", "{answer}"),
        T("Review: {text}\nWhat is the sentiment of this review?{options_}", "{answer}"),
        T("How does the writer feel?\n\n{text}{options_}", "{answer}"),
        T("{text}\n\nDid the author like it?{options_}", "{answer}"),
        T("Read the review and classify its tone.\n{text}{options_}", "{answer}"),
        T("Here is what a customer wrote: \"{text}\" Was the experience good or bad?{options_}",
          "{answer}"),
        T("Decide whether the following opinion is positive or negative.\n\n{text}{options_}",
          "{answer}"),
        T("{text}\nSentiment:{options_}", "{answer}"),
        T("Someone said: {text}\nIs that a happy or unhappy comment?{options_}", "{answer}"),
        T("Classify the sentiment.\nText: {text}{options_}", "{answer}"),
        T("Write a {answer} review.", "{text}", inverted=True),
        T("Give an example of a review with {answer} sentiment.", "{text}", inverted=True),
    ],
    "nli": [
        T("{premise}\nDoes it follow that \"{hypothesis}\"?{options_}", "{answer}"),
        T("Premise: {premise}\nHypothesis: {hypothesis}\nIs the hypothesis true?{options_}",
          "{answer}"),
        T("Given that {premise} Can we conclude that {hypothesis}{options_}", "{answer}"),
        T("Read: {premise}\n\nIs \"{hypothesis}\" true based on the text?{options_}", "{answer}"),
        T("{premise}\n\nQuestion: {hypothesis} Yes, no, or unclear?{options_}", "{answer}"),
        T("Suppose {premise} Then is it the case that {hypothesis}{options_}", "{answer}"),
        T("Statement A: {premise}\nStatement B: {hypothesis}\nDoes A imply B?{options_}",
          "{answer}"),
        T("If \"{premise}\", is it true that \"{hypothesis}\"?{options_}", "{answer}"),
        T("Determine whether the second sentence follows from the first.\n{premise}\n"
          "{hypothesis}{options_}", "{answer}"),
        T("Text: {premise}\nClaim: {hypothesis}\nIs the claim supported?{options_}",
          "{answer}"),
        T("{premise}\nWrite a sentence that is consistent with this.", "{hypothesis}",
          inverted=True),
    ],
    "paraphrase": [
        T("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo they mean the same thing?"
          "{options_}", "{answer}"),
        T("Are these two sentences paraphrases?\n{sentence1}\n{sentence2}{options_}", "{answer}"),
        T("\"{sentence1}\" and \"{sentence2}\" - same meaning?{options_}", "{answer}"),
        T("{sentence1}\n{sentence2}\nDo both sentences describe the same event?{options_}",
          "{answer}"),
        T("Does the sentence \"{sentence2}\" say the same as \"{sentence1}\"?{options_}",
          "{answer}"),
        T("First: {sentence1}\nSecond: {sentence2}\nIs the second a rewording of the first?"
          "{options_}", "{answer}"),
        T("Check whether these sentences are equivalent.\n\n{sentence1}\n{sentence2}{options_}",
          "{answer}"),
        T("{sentence1}\nIs that the same as saying: {sentence2}{options_}", "{answer}"),
        T("Compare the meaning of:\nA) {sentence1}\nB) {sentence2}\nEquivalent?{options_}",
          "{answer}"),
        T("Here are two sentences. {sentence1} {sentence2} Do they convey the same "
          "information?{options_}", "{answer}"),
        T("Rewrite this sentence: {sentence1}", "{sentence2}", inverted=True),
    ],
    "topic": [
        T("{text}\nWhat is this text about?{options_}", "{answer}"),
        T("Which section of a newspaper does this belong to?\n\n{text}{options_}", "{answer}"),
        T("Article: {text}\nTopic:{options_}", "{answer}"),
        T("Classify the topic of the following sentence.\n{text}{options_}", "{answer}"),
        T("{text}\n\nIs this about sports, science, business or world news?{options_}",
          "{answer}"),
        T("Headline: \"{text}\" What category fits best?{options_}", "{answer}"),
        T("Pick the subject of this news item: {text}{options_}", "{answer}"),
        T("What kind of news is this?\n{text}{options_}", "{answer}"),
        T("Read the snippet and name its topic.\n\n{text}{options_}", "{answer}"),
        T("{text}\nThe topic of this sentence is{options_}", "{answer}"),
        T("Write a news sentence about {answer}.", "{text}", inverted=True),
    ],
    "arithmetic": [
        T("{question}", "{answer}"),
        T("Compute {a} {op} {b}.", "{answer}"),
        T("What do you get for {a} {op} {b}?", "{answer}"),
        T("Solve: {question}", "{answer}"),
        T("Answer with a number. {question}", "{answer}"),
        T("Question: {question}\nAnswer:", "{answer}"),
        T("Calculate the result of {a} {op} {b}.", "{answer}"),
        T("Math problem: {a} {op} {b} equals what?", "{answer}"),
        T("Please work out {a} {op} {b}.", "{answer}"),
        T("{a} {op} {b} =", "{answer}"),
        T("Write an arithmetic question whose answer is {answer}.", "{question}", inverted=True),
    ],
    "struct_to_text": [
        T("{meaning_representation}\nDescribe this restaurant in one sentence.", "{answer}"),
        T("Turn the data into a sentence: {meaning_representation}", "{answer}"),
        T("Data: {meaning_representation}\nSentence:", "{answer}"),
        T("Write a sentence about a restaurant with these attributes.\n\n"
          "{meaning_representation}", "{answer}"),
        T("Generate a description from the table.\n{meaning_representation}", "{answer}"),
        T("Attributes: {meaning_representation}\nWhat would a review site say?", "{answer}"),
        T("Verbalize: {meaning_representation}", "{answer}"),
        T("Here are facts about a restaurant: {meaning_representation}. Put them into words.",
          "{answer}"),
        T("{meaning_representation}\n\nWrite this as natural English.", "{answer}"),
        T("Describe {name}, given: {meaning_representation}", "{answer}"),
        T("{answer}\nExtract the restaurant's attributes.", "{meaning_representation}",
          inverted=True),
        T("What food does the restaurant serve? {answer}", "{food}", inverted=True),
    ],
}

METRICS = {"sentiment": "accuracy", "nli": "accuracy", "paraphrase": "accuracy",
           "topic": "accuracy", "arithmetic": "accuracy", "struct_to_text": "rouge"}


def task_name(family: str) -> str:
  return f"offline_{family}"


def _prepare(family):
  def fn():
    offline.prepare([family])
  return fn


def _fields(family):
  import tensorflow as tf
  keys = [k for k in offline.FIELDS[family]]

  def fn(ex):
    out = {k: ex[k] for k in keys}
    if "options" in out:
      out["options"] = tf.reshape(out["options"], [-1])
    return out
  return fn


def register_all():
  """Registers offline_<family> for every family (idempotent)."""
  import seqio

  from flanjax import registration, vocab
  voc = vocab.offline_vocabulary()
  for family in offline.FAMILIES:
    name = task_name(family)
    if name in seqio.TaskRegistry.names():
      continue
    offline.builder_class()  # registers the TFDS builder class
    registration.register_tfds_task(
        name, f"flanjax_offline/{family}:{offline.VERSION}", cluster=offline.CLUSTERS[family],
        templates=TEMPLATES[family], preprocessor=_fields(family),
        splits={"train": "train", "validation": "validation", "test": "test"},
        metric=METRICS[family], vocabulary=voc,
        num_train_examples=offline.SPLIT_SIZES["train"],
        data_dir_fn=offline.data_dir, prepare_fn=_prepare(family))


# flanjax.vocab.train_offline_spm renders TEMPLATES before the vocabulary exists.
if not os.environ.get("_FLANJAX_TRAINING_OFFLINE_SPM"):
  register_all()
