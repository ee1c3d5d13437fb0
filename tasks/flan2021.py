"""The FLAN 2021 collection: 62 datasets in 12 clusters as seqio Tasks over TFDS.

Importing `flanjax.tasks` registers every task below as `flan2021_<key>` through
`flanjax.registration.register_tfds_task` (T5 SentencePiece vocabulary by default; see
`register_flan2021` for another vocabulary, data dir or eval size). Each dataset's task has >= 10
templates of the project's own wording (`flanjax.tasks.flan2021_templates`), some with up to 3
inverted templates (a translation direction task: the 5 of its direction); option tasks render
FLAN's OPTIONS block and target the option text.

The paper (Wei et al. 2021, "Finetuned Language Models Are Zero-Shot Learners", Fig. 3) counts
62 datasets; like the FLAN code, some are registered as several tasks (ANLI R1-R3, MNLI
matched/mismatched, ARC easy/challenge, SQuAD v1/v2, WSC273 as SuperGLUE WSC for training and
WSC273 itself), giving 68 seqio tasks, plus 16 evaluation-only translation-direction tasks (84
in all; see Translation below):

| cluster (key)                                     | paper datasets (tasks)                      |
|---------------------------------------------------|---------------------------------------------|
| nli (7)                                           | ANLI (r1, r2, r3), CB, MNLI (matched,       |
|                                                   | mismatched), QNLI, RTE, SNLI, WNLI          |
| commonsense (4)                                   | COPA, HellaSwag, PIQA, StoryCloze           |
| sentiment (4)                                     | IMDB, Sentiment140, SST-2, Yelp             |
| paraphrase (4)                                    | MRPC, QQP, PAWS, STS-B                      |
| closed_book_qa (3)                                | ARC (easy, challenge), NQ, TriviaQA         |
| struct_to_text (4)                                | CommonGen, DART, E2E NLG, WebNLG            |
| translation (8)                                   | ParaCrawl EN/ES, WMT-14 EN/FR, WMT-16       |
|                                                   | EN/CS, EN/DE, EN/FI, EN/RO, EN/RU, EN/TR    |
| reading_comprehension (5)                         | BoolQ, DROP, MultiRC, OBQA, SQuAD (v1, v2)  |
| reading_comprehension_with_commonsense (2)        | CosmosQA, ReCoRD                            |
| coreference (3)                                   | DPR, Winogrande, WSC273 (SuperGLUE WSC,     |
|                                                   | WSC273)                                     |
| misc (7)                                          | CoQA, QuAC, TREC, CoLA, WiC, Math,          |
|                                                   | Fix Punctuation                             |
| summarization (11)                                | AESLC, CNN-DM, Gigaword, Multi-News,        |
|                                                   | Newsroom, SAMSum, XSum, AG News, Opinion    |
|                                                   | Abstracts (RT, iDebate), WikiLingua EN      |

Translation: a dataset's task (`flan2021_<key>`, e.g. `flan2021_wmt16_translate_deen`) has 5
English->X and 5 X->English templates; it trains on both directions, and its own `validation`
split mixes them (one template drawn per example: about half each way, one corpus BLEU over
two target languages). FLAN (like GPT-3) reports BLEU per direction, so each dataset also has
two evaluation-only tasks over the same data and evaluation split, each with one direction's
templates: `flan2021_<key>_en_to_<lang>` and `flan2021_<key>_<lang>_to_en` (e.g.
`flan2021_wmt16_translate_deen_en_to_de`, paper-dataset label "WMT-16 EN->DE"; `variant_of`
names the dataset's task). The held-out translation evaluation (`eval_task_names`,
`flan2021_heldout_translation`) reports these 16 instead of the 8 mixed tasks.

Splits: `train` (capped at 30k examples by the registration library) and `validation`: the split
the FLAN paper reports results on (the official dev set where test labels are hidden, else the
test set; the last examples of the train split for ParaCrawl, Fix Punctuation and Opinion
Abstracts, which have nothing else). StoryCloze trains on its validation split; WSC273 (only a
test split) is evaluation-only and stays out of the training mixtures, as do the translation
direction tasks (the coreference cluster trains on SuperGLUE WSC instead, as FLAN's code does). Evaluation splits are capped at `max_eval_examples` (default:
$FLANJAX_FLAN2021_MAX_EVAL_EXAMPLES, else the whole split). TFDS versions are those of the
installed tensorflow-datasets (4.9.10); `TRAIN_SIZES` holds the catalog's train-split sizes so
that mixing rates are known without preparing the data. Datasets that need a manual download
(StoryCloze, Newsroom, SAMSum, XSum, some WMT subsets) are registered all the same; reading one
that is not prepared raises the registration library's error naming the dataset, the data dir
and the `tfds build` command.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf
from flanjax.tasks import flan2021_templates as tp

from flanjax import registration

PREFIX = "flan2021_"
HELDOUT_EVAL_SPLIT = "validation"
MAX_TRAIN_EXAMPLES = 30_000
# Default cap on evaluation examples per task (None: the whole split).
MAX_EVAL_EXAMPLES_ENV = "FLANJAX_FLAN2021_MAX_EVAL_EXAMPLES"

CLUSTERS = (
    "nli", "commonsense", "sentiment", "paraphrase", "closed_book_qa", "struct_to_text",
    "translation", "reading_comprehension", "reading_comprehension_with_commonsense",
    "coreference", "misc", "summarization",
)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One catalog task: where its data is, how to map its fields, and its templates."""

  key: str                      # task name without the "flan2021_" prefix
  paper_dataset: str            # the dataset as the FLAN paper counts it
  cluster: str
  tfds_name: str                # "name/config:version"
  splits: Mapping[str, str]     # seqio split -> TFDS split (slice)
  metric: str                   # a kind of flanjax.metrics.METRIC_KINDS, e.g. "accuracy"
  preprocessor: Callable[[dict], dict]
  templates_fn: Callable[[], list]
  train_size: int               # examples in the TFDS split that `train` reads (catalog)
  filter_fn: Callable[[dict], object] | None = None  # raw example -> tf.bool (keep)
  manual_download: bool = False
  headline: str | None = None   # the headline metric when not the metric kind's (TaskInfo)
  rank_metrics: str | None = None  # metrics from the rank winners beside rank_accuracy
  # Evaluation-only tasks that each evaluate one part of a task (one translation direction):
  # the key of that task. They read its data and evaluation split with a subset of its
  # templates, have no train split and replace it in the held-out evaluation (`eval_task_names`).
  variant_of: str | None = None

  @property
  def name(self) -> str:
    return PREFIX + self.key

  @property
  def has_train(self) -> bool:
    return "train" in self.splits

  @property
  def num_train_examples(self) -> int:
    """Examples in the seqio `train` split, capped at 30k (0 for evaluation-only tasks)."""
    if not self.has_train:
      return 0
    return min(_slice_size(self.splits["train"], self.train_size), MAX_TRAIN_EXAMPLES)

  def templates(self) -> list:
    return self.templates_fn()


def _slice_size(split: str, size: int) -> int:
  """Number of examples of a TFDS split spec like "train[:-200]" given the split's size."""
  if "[" not in split:
    return size
  lo, _, hi = split[split.index("[") + 1:-1].partition(":")

  def pos(s, default):
    if not s:
      return default
    v = int(s)
    return max(0, min(size, v if v >= 0 else size + v))

  return max(0, pos(hi, size) - pos(lo, 0))


# ------------------------------------------------------------------------------------------
# tf helpers.


def _pick(options, label):
  """options: python list or tf.string [n]; label int -> answer text ("" when out of range)."""
  opts = tf.reshape(tf.convert_to_tensor(options, tf.string), [-1])
  n = tf.shape(opts)[0]
  label = tf.cast(label, tf.int32)
  ok = tf.logical_and(label >= 0, label < n)
  safe = tf.clip_by_value(label, 0, tf.maximum(n - 1, 0))
  return opts, tf.where(ok, tf.gather(opts, safe), tf.constant(""))


def _label_in_range(field: str, n: int | None = None, *, minus: int = 0, options=None):
  """Filter: keep examples whose `field` (minus `minus`) indexes one of n options."""
  def fn(ex):
    label = tf.cast(ex[field], tf.int32) - minus
    if options is not None:
      size = tf.size(options(ex))
    else:
      size = n
    return tf.logical_and(label >= 0, label < size)
  return fn


def _split_once(text, sep: str):
  """(left, right) of the first `sep` in text; right is "" when sep is absent."""
  parts = tf.strings.split(text, sep, maxsplit=1)
  parts = tf.concat([parts, tf.constant([""])], axis=0)
  return parts[0], parts[1]


def _numbered(items, limit: int | None = None):
  """tf.string [n] -> "1. a\\n2. b ..." (first `limit` items)."""
  items = tf.reshape(items, [-1])
  if limit is not None:
    items = items[:limit]
  numbers = tf.strings.as_string(tf.range(1, tf.size(items) + 1))
  return tf.strings.reduce_join(tf.strings.join([numbers, items], ". "), separator="\n")


def _clean(text):
  return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


# ------------------------------------------------------------------------------------------
# Preprocessors: raw TFDS example -> flat fields (see the templates for what each reads).

NLI3 = ["yes", "it is not possible to tell", "no"]  # entailment, neutral, contradiction


def _nli(premise: str, hypothesis: str, options: Sequence[str]):
  def fn(ex):
    opts, answer = _pick(options, ex["label"])
    return {"premise": ex[premise], "hypothesis": ex[hypothesis], "options": opts,
            "answer": answer}
  return fn


def _qnli(ex):
  opts, answer = _pick(["yes", "no"], ex["label"])  # entailment, not_entailment
  return {"question": ex["question"], "sentence": ex["sentence"], "options": opts,
          "answer": answer}


def _copa(ex):
  opts, answer = _pick(tf.stack([ex["choice1"], ex["choice2"]]), ex["label"])
  return {"premise": ex["premise"], "question": ex["question"], "options": opts,
          "answer": answer}


def _hellaswag(ex):
  context = tf.strings.regex_replace(ex["context"], r"\[header\]\s*", "")
  context = tf.strings.regex_replace(context, r"\[[a-z]+\]\s*", "\n")
  endings = tf.strings.regex_replace(ex["endings"], r"\[[a-z]+\]\s*", "")
  opts, answer = _pick(endings, ex["label"])
  return {"context": tf.strings.strip(context), "activity_label": ex["activity_label"],
          "options": opts, "answer": answer}


def _piqa(ex):
  opts, answer = _pick(tf.stack([ex["sol1"], ex["sol2"]]), ex["label"])
  return {"goal": ex["goal"], "options": opts, "answer": answer}


def _story_cloze(ex):
  opts, answer = _pick(ex["endings"], ex["label"] - 1)  # labels are 1-based
  return {"context": ex["context"], "options": opts, "answer": answer}


def _sentiment(text_field: str, clean: Callable | None = None):
  def fn(ex):
    text = ex[text_field]
    if clean is not None:
      text = clean(text)
    opts, answer = _pick(["negative", "positive"], ex["label"])
    return {"text": text, "options": opts, "answer": answer}
  return fn


def _imdb_clean(text):
  return tf.strings.regex_replace(text, r"<br\s*/?>", "\n")


def _yelp_clean(text):
  text = tf.strings.regex_replace(text, r'\\"', '"')
  return tf.strings.regex_replace(text, r"\\n", " ")


def _sentiment140(ex):
  # polarity: 0 negative, 2 neutral (test only; filtered, else no answer), 4 positive.
  label = tf.where(tf.equal(ex["polarity"], 2), -1, tf.cast(ex["polarity"] > 2, tf.int32))
  opts, answer = _pick(["negative", "positive"], label)
  return {"text": ex["text"], "options": opts, "answer": answer}


def _pair(a: str, b: str, options: Sequence[str], out=("sentence1", "sentence2")):
  def fn(ex):
    opts, answer = _pick(options, ex["label"])
    return {out[0]: ex[a], out[1]: ex[b], "options": opts, "answer": answer}
  return fn


def _stsb(ex):
  score = tf.cast(tf.round(tf.clip_by_value(ex["label"], 0.0, 5.0)), tf.int32)
  opts, answer = _pick([str(i) for i in range(6)], score)  # option i is the value i
  return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"], "options": opts,
          "answer": answer, "label_value": ex["label"]}  # for the correlations


def _arc(ex):
  opts, answer = _pick(ex["choices"]["text"], ex["answerKey"])
  return {"question": ex["question"], "options": opts, "answer": answer}


def _arc_filter(ex):
  """FLAN's `_filter_arc`: only the 4-option questions (train and test), a known answer."""
  choices = ex["choices"]["text"]
  return tf.logical_and(tf.equal(tf.size(choices), 4),
                        _label_in_range("answerKey", options=lambda e: choices)(ex))


def _refs(first, more=None):
  """Every gold answer / reference: [first] + more (tf.string [n]); duplicates are harmless to
  the max-over-references metrics."""
  first = tf.reshape(tf.convert_to_tensor(first, tf.string), [1])
  if more is None:
    return first
  return tf.concat([first, tf.reshape(more, [-1])], axis=0)


def _nq(ex):
  answers = tf.concat([ex["answer"], tf.constant([""])], axis=0)
  return {"question": tf.strings.join([ex["question"], "?"]), "answer": answers[0],
          "references": _refs(answers[0], ex["answer"])}


def _trivia_qa(ex):
  return {"question": ex["question"], "answer": ex["answer"]["value"],
          "references": _refs(ex["answer"]["value"], ex["answer"]["aliases"])}


def _common_gen(ex):
  return {"concepts": tf.strings.reduce_join(ex["concepts"], separator=", "),
          "target": ex["target"], "references": _refs(ex["target"], ex["references"])}


def _dart(ex):
  triples = tf.strings.reduce_join(ex["tripleset"], separator="; ")
  triples = tf.strings.regex_replace(triples, r"\[(TITLE|TABLECONTEXT)\]", "")
  return {"tripleset": _clean(triples), "target": ex["target"],
          "references": _refs(ex["target"], ex["references"])}


def _e2e(ex):
  mr = tf.strings.regex_replace(ex["meaning_representation"], r"\[", " = ")
  mr = tf.strings.regex_replace(mr, r"\]", "")
  return {"meaning_representation": mr, "target": ex["target"],
          "references": _refs(ex["target"], ex["references"])}


def _web_nlg(ex):
  triples = tf.strings.reduce_join(ex["input"], separator="; ")
  triples = tf.strings.regex_replace(triples, "_", " ")
  triples = tf.strings.regex_replace(triples, r" \| ", ", ")
  return {"input_string": triples, "target": ex["target"],
          "references": _refs(ex["target"], ex["references"])}


_LANGS = {"cs": "Czech", "de": "German", "es": "Spanish", "fi": "Finnish", "fr": "French",
          "ro": "Romanian", "ru": "Russian", "tr": "Turkish"}


def _translation(lang: str):
  def fn(ex):
    return {"lang1": tf.constant("English"), "lang2": tf.constant(_LANGS[lang]),
            "sent1": ex["en"], "sent2": ex[lang]}
  return fn


def _bool_q(ex):
  opts, answer = _pick(["no", "yes"], tf.cast(ex["answer"], tf.int32))
  return {"title": ex["title"], "text": ex["passage"], "question": ex["question"],
          "options": opts, "answer": answer}


def _drop(ex):
  return {"context": ex["passage"], "question": ex["question"], "answer": ex["answer"],
          "references": _refs(ex["answer"], ex["validated_answers"])}


def _multirc(ex):
  opts, answer = _pick(["no", "yes"], ex["label"])  # False, True (rank metrics: option 1 true)
  group = tf.strings.join([tf.strings.as_string(ex["idx"]["paragraph"]),
                           tf.strings.as_string(ex["idx"]["question"])], separator="-")
  return {"paragraph": ex["paragraph"], "question": ex["question"],
          "response": ex["answer"], "options": opts, "answer": answer,
          "group": group}  # the question, for F1a / per-question EM


def _openbookqa(ex):
  q = ex["question"]
  opts, answer = _pick(tf.stack([q["choice_A"], q["choice_B"], q["choice_C"], q["choice_D"]]),
                       ex["answerKey"])
  return {"question": q["stem"], "fact": ex["fact1"], "options": opts, "answer": answer}


UNANSWERABLE = "unanswerable"


def _squad(v2: bool):
  def fn(ex):
    first = tf.concat([ex["answers"]["text"], tf.constant([UNANSWERABLE])], axis=0)[0]
    answer = tf.where(ex["is_impossible"], tf.constant(UNANSWERABLE), first) if v2 else first
    more = ex["answers"]["text"]
    if v2:  # an unanswerable question's only reference is UNANSWERABLE
      more = tf.cond(ex["is_impossible"], lambda: tf.zeros([0], tf.string), lambda: more)
    return {"title": tf.strings.regex_replace(ex["title"], "_", " "), "context": ex["context"],
            "question": ex["question"], "answer": answer, "references": _refs(answer, more)}
  return fn


def _cosmos_qa(ex):
  opts, answer = _pick(tf.stack([ex[f"answer{i}"] for i in range(4)]), ex["label"])
  return {"context": ex["context"], "question": ex["question"], "options": opts,
          "answer": answer}


def _record(ex):
  left, right = _split_once(ex["query"], "@placeholder")
  passage, _ = _split_once(ex["passage"], "@highlight")
  entities = tf.reshape(ex["entities"], [-1])
  opts = tf.strings.join([entities, tf.fill(tf.shape(entities), right)])
  answers = tf.concat([tf.reshape(ex["answers"], [-1]), tf.constant([""])], axis=0)
  answer = tf.strings.join([answers[0], right])
  gold = tf.reshape(ex["answers"], [-1])
  return {"passage": tf.strings.strip(passage), "query": tf.strings.strip(left),
          "options": opts, "answer": answer,
          "references": _refs(answer, tf.strings.join([gold, tf.fill(tf.shape(gold), right)]))}


def _dpr(ex):
  opts, answer = _pick(ex["candidates"], ex["label"])
  return {"sentence": ex["sentence"], "pronoun": ex["pronoun"], "options": opts,
          "answer": answer}


def _winogrande(ex):
  left, right = _split_once(ex["sentence"], "_")
  opts = tf.strings.join([tf.stack([ex["option1"], ex["option2"]]), tf.fill([2], right)])
  opts, answer = _pick(opts, ex["label"])
  return {"context": tf.strings.strip(left), "options": opts, "answer": answer}


def _wsc(ex):
  opts, answer = _pick(["no", "yes"], ex["label"])  # label 1: the pronoun is the noun
  return {"text": ex["text"], "noun": ex["span1_text"], "pronoun": ex["span2_text"],
          "options": opts, "answer": answer}


def _wsc273(ex):
  text = ex["text"]
  length = tf.strings.length(text)
  start = tf.clip_by_value(tf.cast(ex["pronoun_start"], tf.int32), 0, length)
  end = tf.clip_by_value(tf.cast(ex["pronoun_end"], tf.int32), start, length)
  prefix = tf.strings.strip(tf.strings.substr(text, 0, start))
  suffix = tf.strings.substr(text, end, length - end)
  entities = tf.stack([ex["option1_normalized"], ex["option2_normalized"]])
  opts, answer = _pick(tf.strings.join([entities, tf.fill([2], suffix)]), ex["label"])
  return {"context": prefix, "options": opts, "answer": answer}


def _coqa(ex):
  return {"text": ex["story"], "numbered_questions": _numbered(ex["questions"]),
          "numbered_answers": _numbered(ex["answers"]["input_text"])}


def _quac(ex):
  return {"title": ex["title"], "background": ex["background"], "context": ex["context"],
          "question": ex["question"], "answer": ex["orig_answer"]["text"],
          "references": _refs(ex["orig_answer"]["text"], ex["answers"]["text"])}


_TREC = ["description", "entity", "abbreviation", "human", "numeric", "location"]


def _trec(ex):
  opts, answer = _pick(_TREC, ex["label-coarse"])  # DESC ENTY ABBR HUM NUM LOC
  return {"text": ex["text"], "options": opts, "answer": answer}


def _cola(ex):
  opts, answer = _pick(["unacceptable", "acceptable"], ex["label"])
  return {"sentence": ex["sentence"], "options": opts, "answer": answer}


def _wic(ex):
  opts, answer = _pick(["different meanings", "the same meaning"], ex["label"])
  return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"], "word": ex["word"],
          "options": opts, "answer": answer}


def _math(ex):

  def unwrap(s):  # the TFDS text holds python bytes reprs, e.g. "b'Solve 2*x = 4.\\n'"
    return tf.strings.regex_replace(s, r"^b'(.*?)(\\n)?'$", r"\1")

  return {"question": unwrap(ex["question"]), "answer": unwrap(ex["answer"])}


def _fix_punct(ex):
  text = ex["en"]
  return {"no_punct": tf.strings.regex_replace(text, r"[^\w\s]", ""), "answer": text}


def _fix_punct_filter(ex):
  return tf.logical_not(tf.equal(tf.strings.regex_replace(ex["en"], r"[^\w\s]", ""), ex["en"]))


def _aeslc(ex):
  return {"body": tf.strings.regex_replace(ex["email_body"], r"\n", " "),
          "subject": tf.strings.regex_replace(ex["subject_line"], r"\n", "")}


def _aeslc_filter(ex):
  return tf.logical_and(tf.strings.length(tf.strings.strip(ex["email_body"])) > 0,
                        tf.strings.length(tf.strings.strip(ex["subject_line"])) > 0)


def _summary(text: str, summary: str, clean: Callable | None = None):
  def fn(ex):
    t = ex[text]
    if clean is not None:
      t = clean(t)
    return {"text": t, "summary": ex[summary]}
  return fn


def _cnn_clean(text):
  # Drop the dateline / source prefix, e.g. "LONDON, England (CNN) -- ".
  return tf.strings.regex_replace(text, r"^.{0,120}?\(CNN\)\s*(--\s*)?", "")


def _gigaword_filter(ex):
  text = tf.strings.join([ex["document"], " ", ex["summary"]])
  return tf.logical_not(tf.strings.regex_full_match(text, r"(?s).*(UNK|#).*"))


def _multi_news_clean(text):
  return tf.strings.regex_replace(text, r"\s*\|\|\|\|\|\s*", "\n\n")


def _newsroom(ex):
  return {"title": ex["title"], "text": ex["text"], "summary": ex["summary"]}


def _samsum(ex):
  dialogue = tf.strings.regex_replace(ex["dialogue"], "\r\n", "\n")
  return {"dialogue": dialogue, "summary": ex["summary"]}


_AG_NEWS = ["World", "Sports", "Business", "Science/Tech"]


def _ag_news(ex):
  opts, answer = _pick(_AG_NEWS, ex["label"])
  return {"title": ex["title"], "text": ex["description"], "options": opts, "answer": answer}


def _rotten_tomatoes(ex):
  reviews = tf.reshape(ex["_critics"]["value"], [-1])
  first = tf.concat([reviews, tf.constant([""])], axis=0)[0]
  return {"movie": tf.strings.regex_replace(ex["_movie_name"], "_", " "),
          "first_review": first, "numbered_reviews": _numbered(reviews, 10),
          "critic_consensus": ex["_critic_consensus"]}


def _idebate(ex):
  return {"debate_name": ex["_debate_name"],
          "argument_sentences": _numbered(ex["_argument_sentences"]["value"], 10),
          "claim": ex["_claim"]}


def _wiki_lingua(ex):
  return {"source": ex["source"], "target": ex["target"]}


# ------------------------------------------------------------------------------------------
# The catalog.

# Train-split sizes from the TFDS catalog (tensorflow-datasets 4.9.x; the split `train` reads).
# Exact below 30k (where the mixing rate depends on it); approximate for a few huge datasets.
TRAIN_SIZES = {
    "anli/r1": 16_946, "anli/r2": 45_460, "anli/r3": 100_459, "super_glue/cb": 250,
    "glue/mnli": 392_702, "glue/qnli": 104_743, "super_glue/rte": 2_490, "glue/wnli": 635,
    "snli": 550_152, "super_glue/copa": 400, "hellaswag": 39_905, "piqa": 16_113,
    "story_cloze/2016": 1_871, "imdb_reviews/plain_text": 25_000, "sentiment140": 1_600_000,
    "glue/sst2": 67_349, "yelp_polarity_reviews": 560_000, "glue/mrpc": 3_668,
    "glue/qqp": 363_846, "paws_wiki": 49_401, "glue/stsb": 5_749, "ai2_arc/ARC-Easy": 2_251,
    "ai2_arc/ARC-Challenge": 1_119, "natural_questions_open": 87_925,
    "trivia_qa/rc.nocontext": 138_384, "gem/common_gen": 67_389, "gem/dart": 62_659,
    "gem/e2e_nlg": 33_525, "gem/web_nlg_en": 35_426, "para_crawl/enes": 21_987_267,
    "wmt14_translate/fr-en": 40_836_876, "wmt16_translate/cs-en": 997_240,
    "wmt16_translate/de-en": 4_548_885, "wmt16_translate/fi-en": 2_073_394,
    "wmt16_translate/ro-en": 610_320, "wmt16_translate/ru-en": 1_516_162,
    "wmt16_translate/tr-en": 205_756, "bool_q": 9_427, "drop": 77_409,
    "super_glue/multirc": 27_243, "openbookqa": 4_957, "squad/v1.1": 87_599,
    "squad/v2.0": 130_319, "cosmos_qa": 25_262, "super_glue/record": 100_730,
    "definite_pronoun_resolution": 1_322, "winogrande": 40_398, "super_glue/wsc": 554, "wsc273": 273, "coqa": 7_199,
    "quac": 83_568, "trec": 5_452, "glue/cola": 8_551, "super_glue/wic": 5_428,
    "math_dataset/algebra__linear_1d": 1_999_998, "para_crawl/enda": 7_360_000,
    "aeslc": 14_436, "cnn_dailymail": 287_113, "gigaword": 3_803_957, "multi_news": 44_972,
    "newsroom": 995_041, "samsum": 14_732, "xsum": 203_577, "ag_news_subset": 120_000,
    "opinion_abstracts/rotten_tomatoes": 3_731, "opinion_abstracts/idebate": 2_259,
    "gem/wiki_lingua_english_en": 99_020,
}


def _tv(validation: str, train: str = "train") -> dict[str, str]:
  """train (capped at 30k by the registration library) / validation = FLAN's evaluation split."""
  return {"train": train, "validation": validation}


def _versioned(name: str) -> str:
  return f"{name}:{_VERSIONS[name.split('/')[0]]}"


# The installed tensorflow-datasets' versions (pinned so that a TFDS upgrade is explicit).
_VERSIONS = {
    "anli": "0.1.0", "super_glue": "1.0.2", "glue": "2.0.0", "snli": "1.1.0",
    "hellaswag": "1.1.0", "piqa": "1.0.0", "story_cloze": "1.0.0", "imdb_reviews": "1.0.0",
    "sentiment140": "1.0.0", "yelp_polarity_reviews": "0.2.0", "paws_wiki": "1.1.0",
    "ai2_arc": "1.0.0", "natural_questions_open": "1.0.0", "trivia_qa": "1.1.0", "gem": "1.1.0",
    "para_crawl": "1.2.0", "wmt14_translate": "1.0.0", "wmt16_translate": "1.0.0",
    "bool_q": "1.0.0", "drop": "2.0.0", "openbookqa": "0.1.0", "squad": "3.0.0",
    "cosmos_qa": "1.0.0", "definite_pronoun_resolution": "1.1.0", "winogrande": "1.2.0",
    "wsc273": "1.0.0", "coqa": "1.0.0", "quac": "1.0.0", "trec": "1.0.0",
    "math_dataset": "1.0.0", "aeslc": "1.0.0", "cnn_dailymail": "3.4.0", "gigaword": "1.2.0",
    "multi_news": "2.1.0", "newsroom": "1.0.0", "samsum": "1.0.0", "xsum": "1.1.0",
    "ag_news_subset": "1.0.0", "opinion_abstracts": "1.0.0",
}

_MANUAL = {"story_cloze/2016", "newsroom", "samsum", "xsum",
           # WMT: only the pairs with a hand-downloaded corpus (CzEng, Yandex); the others build
           # with a plain `tfds build` (registration.needs_manual_download reads TFDS's lists).
           "wmt16_translate/cs-en", "wmt16_translate/ru-en"}


def _spec(key, paper, cluster, tfds, splits, metric, pre, templates, *, filter_fn=None,
          size_of=None, headline=None, variant_of=None, rank_metrics=None):
  return DatasetSpec(
      key=key, paper_dataset=paper, cluster=cluster, tfds_name=_versioned(tfds), splits=splits,
      metric=metric, preprocessor=pre, templates_fn=templates,
      train_size=TRAIN_SIZES[size_of or tfds], filter_fn=filter_fn,
      manual_download=tfds in _MANUAL, headline=headline,
      variant_of=variant_of, rank_metrics=rank_metrics)


def _translation_specs(key: str, corpus: str, lang: str, tfds: str,
                       splits: Mapping[str, str]) -> list[DatasetSpec]:
  """A translation dataset's task (both directions: trains on both, and its own validation split
  mixes them, about half each) and its two evaluation-only direction tasks
  `<key>_en_to_<lang>` / `<key>_<lang>_to_en` (same data and evaluation split, one direction's
  templates), so that BLEU is reported per direction as FLAN (like GPT-3) does."""
  up = lang.upper()
  pre = _translation(lang)
  # Evaluation-only (no `train`: no training mixture takes them); k-shot exemplars come from the
  # dataset's train pairs.
  eval_only = {"validation": splits["validation"], registration.EXEMPLAR_SPLIT: splits["train"]}
  return [
      _spec(key, f"{corpus} EN/{up}", "translation", tfds, splits, "bleu", pre, tp.translation),
      _spec(f"{key}_en_to_{lang}", f"{corpus} EN->{up}", "translation", tfds, eval_only, "bleu",
            pre, tp.translation_en_to_x, variant_of=key),
      _spec(f"{key}_{lang}_to_en", f"{corpus} {up}->EN", "translation", tfds, eval_only, "bleu",
            pre, tp.translation_x_to_en, variant_of=key),
  ]


def _build_specs() -> list[DatasetSpec]:
  sp = []
  add = sp.append
  v, t = "validation", "test"
  # --- NLI (7 paper datasets).
  for r in ("r1", "r2", "r3"):
    add(_spec(f"anli_{r}", "ANLI", "nli", f"anli/{r}", _tv(t), "accuracy",
              _nli("context", "hypothesis", NLI3), tp.nli))
  add(_spec("cb", "CB", "nli", "super_glue/cb", _tv(v), "accuracy",
            _nli("premise", "hypothesis", ["yes", "no", "it is not possible to tell"]), tp.nli))
  for which in ("matched", "mismatched"):
    add(_spec(f"mnli_{which}", "MNLI", "nli", "glue/mnli", _tv(f"validation_{which}"),
              "accuracy", _nli("premise", "hypothesis", NLI3), tp.nli))
  add(_spec("qnli", "QNLI", "nli", "glue/qnli", _tv(v), "accuracy", _qnli, tp.qnli))
  add(_spec("rte", "RTE", "nli", "super_glue/rte", _tv(v), "accuracy",
            _nli("premise", "hypothesis", ["yes", "no"]), tp.nli))
  add(_spec("snli", "SNLI", "nli", "snli", _tv(t), "accuracy",
            _nli("premise", "hypothesis", NLI3), tp.nli, filter_fn=_label_in_range("label", 3)))
  add(_spec("wnli", "WNLI", "nli", "glue/wnli", _tv(v), "accuracy",
            _nli("sentence1", "sentence2", ["no", "yes"]), tp.nli))
  # --- Commonsense (4).
  add(_spec("copa", "COPA", "commonsense", "super_glue/copa", _tv(v), "accuracy", _copa,
            tp.copa))
  add(_spec("hellaswag", "HellaSwag", "commonsense", "hellaswag", _tv(v), "accuracy",
            _hellaswag, tp.hellaswag,
            filter_fn=_label_in_range("label", options=lambda ex: ex["endings"])))
  add(_spec("piqa", "PIQA", "commonsense", "piqa", _tv(v), "accuracy", _piqa, tp.piqa))
  # StoryCloze has no train split: FLAN trains on its validation split, evaluates on test.
  add(_spec("story_cloze", "StoryCloze", "commonsense", "story_cloze/2016", _tv(t, train=v),
            "accuracy", _story_cloze, tp.story_cloze,
            filter_fn=_label_in_range("label", minus=1, options=lambda ex: ex["endings"])))
  # --- Sentiment (4).
  add(_spec("imdb_reviews", "IMDB", "sentiment", "imdb_reviews/plain_text", _tv(t), "accuracy",
            _sentiment("text", _imdb_clean), lambda: tp.sentiment("movie review")))
  add(_spec("sentiment140", "Sent140", "sentiment", "sentiment140", _tv(t), "accuracy",
            _sentiment140, lambda: tp.sentiment("tweet"),
            filter_fn=lambda ex: tf.not_equal(ex["polarity"], 2)))
  add(_spec("sst2", "SST-2", "sentiment", "glue/sst2", _tv(v), "accuracy",
            _sentiment("sentence"), lambda: tp.sentiment("movie review excerpt")))
  add(_spec("yelp_polarity_reviews", "Yelp", "sentiment", "yelp_polarity_reviews", _tv(t),
            "accuracy", _sentiment("text", _yelp_clean), lambda: tp.sentiment("restaurant review")))
  # --- Paraphrase (4).
  # GLUE's MRPC / QQP metric is accuracy and the F1 of "yes" (equivalent / duplicate, option 1):
  # rank_f1 from the rank winners beside rank accuracy.
  add(_spec("glue_mrpc", "MRPC", "paraphrase", "glue/mrpc", _tv(v), "accuracy",
            _pair("sentence1", "sentence2", ["no", "yes"]), tp.paraphrase_pair,
            rank_metrics="binary_f1"))
  add(_spec("glue_qqp", "QQP", "paraphrase", "glue/qqp", _tv(v), "accuracy",
            _pair("question1", "question2", ["no", "yes"], out=("question1", "question2")),
            tp.qqp, rank_metrics="binary_f1"))
  add(_spec("paws_wiki", "PAWS", "paraphrase", "paws_wiki", _tv(t), "accuracy",
            _pair("sentence1", "sentence2", ["no", "yes"]), tp.paraphrase_pair))
  # FLAN reports STS-B by Pearson / Spearman correlation with the float score (GLUE's metric):
  # rank_pearson / rank_spearman of the winning option's value beside its rank accuracy.
  add(_spec("stsb", "STS-B", "paraphrase", "glue/stsb", _tv(v), "accuracy", _stsb, tp.stsb,
            rank_metrics="correlation"))
  # --- Closed-book QA (3).
  for level in ("Easy", "Challenge"):
    add(_spec(f"arc_{level.lower()}", "ARC", "closed_book_qa", f"ai2_arc/ARC-{level}", _tv(t),
              "accuracy", _arc, tp.multiple_choice_qa, filter_fn=_arc_filter))
  # FLAN (after GPT-3) reports closed-book NQ and TriviaQA by exact match: their headline, under
  # T5's TriviaQA normalisation as FLAN's code scores them (metric kind trivia_qa).
  add(_spec("natural_questions", "Natural Questions", "closed_book_qa",
            "natural_questions_open", _tv(v), "trivia_qa", _nq,
            lambda: tp.closed_book_qa("general knowledge"), headline="em"))
  add(_spec("trivia_qa", "TriviaQA", "closed_book_qa", "trivia_qa/rc.nocontext", _tv(v),
            "trivia_qa", _trivia_qa, lambda: tp.closed_book_qa("trivia"), headline="em"))
  # --- Struct to text (4).
  for key, paper, pre, templates in (
      ("common_gen", "CommonGen", _common_gen, tp.common_gen),
      ("dart", "DART", _dart, tp.dart),
      ("e2e_nlg", "E2E NLG", _e2e, tp.e2e_nlg),
      ("web_nlg_en", "WebNLG", _web_nlg, tp.web_nlg)):
    add(_spec(key, paper, "struct_to_text", f"gem/{key}", _tv(v), "rouge", pre, templates))
  # --- Translation (8), each with its two evaluation-only direction tasks (16 more).
  # ParaCrawl has only a train split: evaluate on its last 1,000 pairs.
  sp += _translation_specs("para_crawl_enes", "ParaCrawl", "es", "para_crawl/enes",
                           _tv("train[-1000:]", train=f"train[:{MAX_TRAIN_EXAMPLES}]"))
  sp += _translation_specs("wmt14_enfr", "WMT-14", "fr", "wmt14_translate/fr-en", _tv(t))
  for lang in ("cs", "de", "fi", "ro", "ru", "tr"):
    sp += _translation_specs(f"wmt16_translate_{lang}en", "WMT-16", lang,
                             f"wmt16_translate/{lang}-en", _tv(t))
  # --- Reading comprehension (5).
  rc = "reading_comprehension"
  add(_spec("bool_q", "BoolQ", rc, "bool_q", _tv(v), "accuracy", _bool_q, tp.bool_q))
  add(_spec("drop", "DROP", rc, "drop", _tv("dev"), "squad", _drop, tp.drop))
  # FLAN (and GPT-3) report MultiRC by SuperGLUE's F1 over all answers (F1a) and exact match per
  # question: rank_f1a / rank_em from the rank winners, beside per-answer rank accuracy.
  add(_spec("multirc", "MultiRC", rc, "super_glue/multirc", _tv(v), "accuracy", _multirc,
            tp.multirc, rank_metrics="grouped_f1a_em"))
  add(_spec("openbookqa", "OBQA", rc, "openbookqa", _tv(t), "accuracy", _openbookqa,
            tp.openbookqa))
  add(_spec("squad_v1", "SQuAD", rc, "squad/v1.1", _tv(v), "squad", _squad(False), tp.squad))
  add(_spec("squad_v2", "SQuAD", rc, "squad/v2.0", _tv(v), "squad", _squad(True),
            lambda: tp.squad(unanswerable=True)))
  # --- Reading comprehension with commonsense (2).
  rcc = "reading_comprehension_with_commonsense"
  add(_spec("cosmos_qa", "CosmosQA", rcc, "cosmos_qa", _tv(v), "accuracy", _cosmos_qa,
            tp.cosmos_qa, filter_fn=_label_in_range("label", 4)))
  # FLAN ranks ReCoRD's entity options (its utils.is_classification makes ReCoRD a
  # classification task): rank accuracy is the headline, F1/EM of free generation beside it.
  add(_spec("record", "ReCoRD", rcc, "super_glue/record", _tv(v), "squad", _record, tp.record,
            headline="rank_accuracy"))
  # --- Coreference (3).
  add(_spec("definite_pronoun_resolution", "DPR", "coreference", "definite_pronoun_resolution",
            _tv(t), "accuracy", _dpr, tp.definite_pronoun_resolution,
            filter_fn=_label_in_range("label", options=lambda ex: ex["candidates"])))
  add(_spec("winogrande", "Winogrande", "coreference", "winogrande", _tv(v, train="train_xl"),
            "accuracy", _winogrande, tp.sentence_completion_coref,
            filter_fn=_label_in_range("label", 2)))
  # The paper's WSC273 as the FLAN code has it: training on SuperGLUE WSC (yes/no: is the
  # pronoun the noun? evaluated on its validation split), and WSC273 itself (only a test split,
  # 273 examples), evaluation only.
  add(_spec("wsc", "WSC273", "coreference", "super_glue/wsc", _tv(v), "accuracy", _wsc, tp.wsc,
            filter_fn=_label_in_range("label", 2)))
  add(_spec("wsc273", "WSC273", "coreference", "wsc273", {"validation": "test"}, "accuracy",
            _wsc273, tp.sentence_completion_coref, filter_fn=_label_in_range("label", 2)))
  # --- Misc (7).
  add(_spec("coqa", "CoQA", "misc", "coqa", _tv(t), "squad", _coqa, tp.coqa))
  add(_spec("quac", "QuAC", "misc", "quac", _tv(v), "trivia_qa", _quac, tp.quac))  # FLAN's
  add(_spec("trec", "TREC", "misc", "trec", _tv(t), "accuracy", _trec, tp.trec))
  add(_spec("cola", "CoLA", "misc", "glue/cola", _tv(v), "accuracy", _cola, tp.cola))
  add(_spec("wic", "WiC", "misc", "super_glue/wic", _tv(v), "accuracy", _wic, tp.wic))
  add(_spec("math_dataset", "Math", "misc", "math_dataset/algebra__linear_1d", _tv(t),
            "accuracy", _math, tp.math_dataset))
  # Fix punctuation: English sentences of ParaCrawl EN/DA (as FLAN), evaluated on its last 3k;
  # FLAN's metric, T5's word edit distance (mean_edit), beside ROUGE (the headline).
  add(_spec("fix_punct", "Fix Punctuation", "misc", "para_crawl/enda",
            _tv("train[-3000:]", train=f"train[:{MAX_TRAIN_EXAMPLES}]"), "rouge_edit", _fix_punct,
            tp.fix_punct, filter_fn=_fix_punct_filter))
  # --- Summarization (11).
  sm = "summarization"
  add(_spec("aeslc", "AESLC", sm, "aeslc", _tv(t), "rouge", _aeslc, tp.aeslc,
            filter_fn=_aeslc_filter))
  add(_spec("cnn_dailymail", "CNN-DM", sm, "cnn_dailymail", _tv(t), "rouge",
            _summary("article", "highlights", _cnn_clean), lambda: tp.summarize("news article")))
  add(_spec("gigaword", "Gigaword", sm, "gigaword", _tv(t), "rouge",
            _summary("document", "summary"), lambda: tp.summarize("news sentence"),
            filter_fn=_gigaword_filter))
  add(_spec("multi_news", "Multi-News", sm, "multi_news", _tv(t), "rouge",
            _summary("document", "summary", _multi_news_clean),
            lambda: tp.summarize("collection of news reports")))
  add(_spec("newsroom", "Newsroom", sm, "newsroom", _tv(t), "rouge", _newsroom, tp.newsroom))
  add(_spec("samsum", "SAMSum", sm, "samsum", _tv(t), "rouge", _samsum, tp.samsum))
  add(_spec("xsum", "XSum", sm, "xsum", _tv(t), "rouge", _summary("document", "summary"),
            lambda: tp.summarize("BBC article")))
  add(_spec("ag_news_subset", "AG News", sm, "ag_news_subset", _tv(t), "accuracy", _ag_news,
            tp.ag_news))
  # Opinion Abstracts have only a train split: evaluate on its last 500 examples.
  for key, paper, pre, templates in (
      ("rotten_tomatoes", "Opinion Abstracts: RT", _rotten_tomatoes, tp.opinion_rotten_tomatoes),
      ("idebate", "Opinion Abstracts: iDebate", _idebate, tp.opinion_idebate)):
    add(_spec(f"opinion_abstracts_{key}", paper, sm, f"opinion_abstracts/{key}",
              _tv("train[-500:]", train="train[:-500]"), "rouge", pre, templates))
  add(_spec("wiki_lingua_english_en", "WikiLingua EN", sm, "gem/wiki_lingua_english_en", _tv(t),
            "rouge", _wiki_lingua, tp.wiki_lingua))
  return sp


SPECS: tuple[DatasetSpec, ...] = tuple(_build_specs())
SPECS_BY_NAME: dict[str, DatasetSpec] = {s.name: s for s in SPECS}


def _check_cluster(cluster: str | None) -> None:
  if cluster is not None and cluster not in CLUSTERS:
    import difflib
    close = difflib.get_close_matches(cluster, CLUSTERS, n=3)
    raise ValueError(f"Unknown FLAN 2021 cluster {cluster!r}; valid: {', '.join(CLUSTERS)}."
                     + (f" Closest: {', '.join(close)}." if close else ""))


def task_names(cluster: str | None = None) -> list[str]:
  """Registered names of the catalog tasks (of one cluster), evaluation-only ones included."""
  _check_cluster(cluster)
  return [s.name for s in SPECS if cluster is None or s.cluster == cluster]


def eval_task_names(cluster: str | None = None) -> list[str]:
  """The tasks a held-out evaluation of the cluster reports: its tasks, except that a task with
  evaluation-only variants is replaced by them (a translation dataset by its two directions)."""
  _check_cluster(cluster)
  split_up = {s.variant_of for s in SPECS if s.variant_of}
  return [s.name for s in SPECS
          if (cluster is None or s.cluster == cluster) and s.key not in split_up]


def paper_datasets() -> dict[str, list[str]]:
  """cluster -> the paper's dataset names (62 in all; direction tasks are not datasets)."""
  out: dict[str, list[str]] = {c: [] for c in CLUSTERS}
  for s in SPECS:
    if s.variant_of:
      continue
    if s.paper_dataset not in out[s.cluster]:
      out[s.cluster].append(s.paper_dataset)
  return out


def register_flan2021(*, vocabulary=None, tfds_data_dir: str | None = None,
                      max_eval_examples: int | None = None, prefix: str = PREFIX,
                      keys: Sequence[str] | None = None) -> list[str]:
  """Registers the catalog (or the tasks `keys`) as `<prefix><key>`; returns the task names.

  vocabulary: a seqio vocabulary (default: the T5 SentencePiece model at $FLANJAX_T5_VOCAB, read
  when first used). max_eval_examples caps the evaluation split (default: the environment
  variable FLANJAX_FLAN2021_MAX_EVAL_EXAMPLES, else no cap). Names already registered are kept
  as they are (registering twice is a no-op).
  """
  specs = SPECS if keys is None else [_spec_by_key(k) for k in keys]
  if vocabulary is None:
    from flanjax import vocab
    vocabulary = vocab.default_vocabulary()  # lazy: the file is read when first used
  if max_eval_examples is None and os.environ.get(MAX_EVAL_EXAMPLES_ENV):
    max_eval_examples = int(os.environ[MAX_EVAL_EXAMPLES_ENV])
  names = []
  for spec in specs:
    name = prefix + spec.key
    if name in seqio.TaskRegistry.names():
      names.append(name)
      continue
    registration.register_tfds_task(
        name, spec.tfds_name, cluster=spec.cluster, templates=spec.templates(),
        preprocessor=spec.preprocessor, splits=dict(spec.splits), metric=spec.metric,
        max_train_examples=MAX_TRAIN_EXAMPLES, max_eval_examples=max_eval_examples,
        vocabulary=vocabulary, tfds_data_dir=tfds_data_dir,
        num_train_examples=spec.num_train_examples, filter_fn=spec.filter_fn,
        headline=spec.headline, rank_metrics=spec.rank_metrics)
    names.append(name)
  return names


def _spec_by_key(key: str) -> DatasetSpec:
  for s in SPECS:
    if s.key == key or s.name == key:
      return s
  import difflib
  close = difflib.get_close_matches(key, [s.key for s in SPECS], n=3)
  raise KeyError(f"Unknown FLAN 2021 task {key!r}." +
                 (f" Closest: {', '.join(close)}." if close else ""))


register_flan2021()
