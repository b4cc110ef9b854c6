/* The extension module `tailorbot._native` (see native.h). */
#include "native.h"

static PyMethodDef module_methods[] = {
    {"mean_rows", FASTCALL(mean_rows),
     "mean_rows(table, ids, out) -> None\n\nWrites the float32 mean of the float16 rows "
     "``table[ids]`` to ``out``, summed in the order of ``ids`` (zeros for no ids)."},
    {"embedding_scores", FASTCALL(embedding_scores),
     "embedding_scores(table, ids, weight, coef, dense, scores, projections) -> None\n\n"
     "Writes the l2-normalized float32 mean of the float16 rows ``table[ids]``, times "
     "``weight``, to ``dense`` and adds the same vector's product with ``coef`` to ``scores`` "
     "(float64), as the sum of each token's row times ``coef``, scaled. Each token's product "
     "is made once and kept in ``projections`` (token -> bytes of doubles)."},
    {"posterior_moment", FASTCALL(posterior_moment),
     "posterior_moment(x, a_inv, theta) -> tuple[float, float]\n\nA linear bandit arm's "
     "``x . theta`` and ``sqrt(max(x @ a_inv @ x, 0))`` for the context row ``x`` (a list "
     "of floats)."},
    {"arm_moments", FASTCALL(arm_moments),
     "arm_moments(context, index, arms, arm_features, solved) -> tuple[list, list] | None"
     "\n\nEach offered arm's ``x . theta`` and width, as posterior_moment, ``x`` the "
     "context's features at their ``index`` positions (the bias 1.0 last) with the arm's own "
     "``arm_features[arm]`` over them (None: none), ``solved`` one (a_inv, theta) per arm. "
     "None when a key is not a str or a value not a float or an int: the Python path "
     "reads those."},
    {"ucb_select", FASTCALL(ucb_select),
     "ucb_select(context, index, arms, arm_features, posterior, alpha, epsilon, tolerance, "
     "draw) -> tuple[str, float, dict] | None\n\nLinUCB.select over the offered ``arms``: "
     "the arm, its propensity and each arm's UCB score, ``posterior`` holding each arm's "
     "solved (a_inv, theta), the rows read as arm_moments reads them, ``draw()`` the "
     "uniform it draws from, called last. None for what the Python path must handle: an "
     "arm not solved yet or not an exact str that check_arms takes, alpha or epsilon not "
     "a float or an int, what arm_moments leaves to it, a NaN score."},
    {"score_articles", FASTCALL(score_articles),
     "score_articles(candidates, articles, unhelpful, for_all, tier, language, matches, "
     "relevant, on_intent, confidence, history, evidence, weights, k) -> list | None\n\nThe "
     "``k`` best of the recommender's candidates with a positive score as (-score, id, "
     "article, weighted), sorted as those tuples sort: HybridRecommender.recommend's loop, "
     "its sort and its cut (articles: id -> article; matches: id -> text score, counted for "
     "the ids in the set relevant; on_intent: the set of ids on the message's intent; "
     "history: None, or (resolved, helpful) for a personalized user; evidence: (rates, "
     "links, similar, popularity); weights: the 8 in hybrid.SIGNAL_ORDER). None when a "
     "weight or a signal's value is not a float, an id not a str, or matches, relevant or "
     "on_intent not an exact dict or set: the Python path reads those."},
    {"article_reasons", FASTCALL(article_reasons),
     "article_reasons(weighted, terms, words, worded, word_one, extra, minimum, mentioned) "
     "-> list[str] | None\n\nThe reasons of one recommended article, strongest first "
     "(ReasonWriter.reasons_in_python): of its ``weighted`` signals those whose "
     "absolute value reaches ``minimum``, the text signal worded from the first "
     "``mentioned`` of the message's ``words`` ((word, term) pairs) whose term is in the "
     "article's ``terms``, any other read from ``worded`` or, when it is not there, from "
     "``word_one(name, *extra)`` (None: no text). None when a value is not a float, a name "
     "or a word not a str, or a container not of its exact type: the Python path reads "
     "those."},
    {"top_similar", FASTCALL(top_similar),
     "top_similar(neighbours, basket, n) -> dict[str, float] | None\n\nItem-kNN's ``n`` "
     "best articles for ``basket`` (ItemKNN.most_similar_in_python): each article's "
     "similarities to the basket's (``neighbours``: article -> {neighbour: similarity}) "
     "summed as ItemKNN.scores sums them, clipped to 1, best first by (score, id). None when "
     "a list is not an exact dict, an id not a str or a similarity not a float or a NaN: the "
     "Python path reads those."},
    {"intent_evidence", FASTCALL(intent_evidence),
     "intent_evidence(entries, articles, prior_strength, rate_type, evidence_type, all_group) "
     "-> dict | None\n\nEach of ``articles``' evidence for an intent "
     "(CollaborativeStats.evidence_in_python): ``entries`` the (group, issues, article -> "
     "counts) of all customers, then of each group, an evidence an ``evidence_type`` of two "
     "``rate_type`` (rate, group, hits, trials), all customers' group ``all_group``. None "
     "when a count or an issue count is not a finite float, a table not a dict or a "
     "defaultdict, an id not a str, or a denominator zero: the Python path reads those."},
    {"checked_model", FASTCALL(checked_model),
     "checked_model(model, values, names, slots) -> instance | None\n\n``model``'s "
     "instance holding ``values`` as they are (events.schema.checked_event_in_python): "
     "``model.__new__(model)``, then ``object.__setattr__`` of the 4 ``slots`` to "
     "``values`` itself, ``set(values)``, None and None. None when ``values`` is not an "
     "exact dict whose keys are exactly the frozenset ``names``: the Python path refuses "
     "it."},
    {"fill_template", FASTCALL(fill_template),
     "fill_template(pieces, context, defaults, builtins, max_chars) -> str | None\n\n"
     "A template's ``pieces`` (kb.render._pieces: literal text, and ``(name,)`` for a "
     "placeholder) joined, each placeholder the first non-empty of ``context[name]`` and "
     "``defaults[name]``, each made one line of at most ``max_chars`` characters "
     "(``\" \".join(str(value).split())[:max_chars]``, None as empty), else "
     "``builtins.get(name, \"\")`` (kb.render.render). None when a mapping is not an exact "
     "dict or a piece of another shape: the Python path reads those."},
    {"softmax_top", FASTCALL(softmax_top),
     "softmax_top(scores, temperature, k) -> list[tuple[int, float]]\n\nThe ``k`` (at most "
     "16) most probable classes of ``softmax(scores / temperature)``, best first, ties to "
     "the lower index, with their probabilities."},
    {"language_scores", FASTCALL(language_scores),
     "language_scores(data, nextmove, row, output, ptc, pc) -> tuple[int, float]\n\nThe "
     "most probable class of py3langid's naive Bayes for the UTF-8 bytes ``data`` and its "
     "normalized probability: the DFA (``nextmove``, ``row``, ``output``) walked over the "
     "bytes, each feature reached weighted by log1p of its count in its float16 row of "
     "``ptc`` (float32 products summed in doubles, rounded once), plus the priors ``pc``, "
     "scaled by 1 / sqrt(len(data)) and a softmax in float32."},
    {"language_scores_ascii", FASTCALL(language_scores_ascii),
     "language_scores_ascii(data, classes, table, start, shift, ptc, pc) -> tuple[int, "
     "float]\n\nlanguage_scores for ASCII ``data`` through the same DFA packed for it "
     "(models/intent/language_dfa.py): ``classes`` the class of each of the 128 ASCII "
     "bytes, ``table[row, class]`` the next state's row shifted left by ``shift`` and its "
     "feature plus one (0: none) below, ``start`` the first state's row, ``ptc`` the rows "
     "of the features it reaches, renumbered. ValueError for a byte that is not ASCII."},
    {"word_runs", FASTCALL(word_runs),
     "word_runs(text, min_len) -> list[str]\n\nThe maximal runs of word characters "
     "(Python's ``\\w``: alphanumeric or ``_``) at least ``min_len`` long, in order: "
     "``re.findall(r\"(?u)\\b\\w\\w+\\b\", text)`` for 2, scikit-learn's default "
     "token pattern."},
    {"cached_piece_ids", FASTCALL(cached_piece_ids),
     "cached_piece_ids(text, kept) -> list[int] | None\n\nThe ids of ``text``'s pieces "
     "(runs of ``\u2581`` and the characters up to the next, the text read with a "
     "``\u2581`` in front and for each space) from ``kept`` (piece -> list of ids), "
     "concatenated; None when a piece is not kept."},
    {"stemmed_terms", FASTCALL(stemmed_terms),
     "stemmed_terms(text, stop_words, stem) -> list\n\n``[stem(w) for w in "
     "re.findall(\"[a-z0-9]+\", text.lower()) if w not in stop_words]``: the recommender's "
     "tokenize (``stop_words`` a frozenset)."},
    {"message_terms", FASTCALL(message_terms),
     "message_terms(text, stop_words, stem) -> tuple[list, list]\n\n``(stemmed_terms(text, "
     "stop_words, stem), words)``, ``words`` the ``(word, term)`` of each piece of "
     "``text.lower().replace(\"_\", \" \").split()``, stripped of ``.,!?;:'\"()[]``, "
     "that is exactly one term; each word once, where it first appears."},
    {"unknown_words", FASTCALL(unknown_words),
     "unknown_words(text, known) -> list[str]\n\nThe runs of ``text`` cut as "
     "``re.findall(\"[a-z]+|[^a-z]+\", text)`` that are letters (``str.isalpha``) and "
     "not keys of ``known``, in order, repeats kept."},
    {"session_summary", FASTCALL(session_summary),
     "session_summary(sessions, now, widths, rate_window) -> tuple | None\n\nA user's "
     "sessions summed up as of ``now``: (the sessions started in each window of ``widths``, "
     "the recent sessions' resolution rate, handoff rate, unresolved streak and lengths, "
     "the articles that resolved each intent), the recent ones those started within "
     "``rate_window``. None when a value is not of the type the stream worker writes, or "
     "``now``, ``rate_window`` or a width (16 at most) is not a float: the Python pass "
     "(features/session_summary.py) reads those."},
    {"memory_summaries", FASTCALL(memory_summaries),
     "memory_summaries(outcomes, variant_totals, article_totals, now, oldest, decay) -> "
     "tuple | None\n\nA user's (variant_rewards, article_rewards) as of ``now``: the folded "
     "totals plus the outcomes, each weighted by ``exp((time - now) * decay)`` when in "
     "``(oldest, now]``, summed up per key in key order. None when a value is not of the "
     "type the stream worker writes: the Python pass (features/memory.py) reads those."},
    {"window_counts", FASTCALL(window_counts),
     "window_counts(sorted_ts, now, widths) -> list[int] | None\n\nFor each of ``widths``, "
     "how many of ``sorted_ts`` lie in ``(now - width, now]``, by bisection as "
     "``bisect.bisect_right``; None when ``now``, a width (16 at most) or a timestamp it "
     "compares is not a float, or a container is a subclass: the Python path "
     "(features/windows.py) compares those."},
    {"message_features", FASTCALL(message_features),
     "message_features(state, now, widths, rate_window) -> tuple | None\n\nThe feature "
     "view's message features of a user's state: the counts of ``state['ts']`` and of "
     "``state['cm_ts']`` in each of ``widths``' windows (window_counts'), the second item of "
     "each pair in ``state['intents']``, and the intents of the customer messages within "
     "``rate_window`` counted, most frequent first, ties by name. None for what the Python "
     "path (features/view.py) must read: a value that is not a float, an intent that is "
     "neither None nor an exact str, a pair of another kind, a container subclass."},
    {"feature_view", FASTCALL(feature_view),
     "feature_view(state, record, profile, now, personalized, constants, rules) -> dict | "
     "None\n\nA user's feature view as of ``now`` (features/view.py). ``record`` (None or a "
     "FeatureRecord) gives the user's id and times, ``profile`` (None or a dict) the "
     "profile's keys; ``constants`` is (the view's names, the event windows' widths, the "
     "session windows', the rate window, the memory's retention in seconds and its decay "
     "per second, the default tier, the default language), ``rules`` the segment rules' "
     "(at-risk CSAT, at-risk streak, VIP tiers, frequent sessions in 7 days, how long a "
     "user is new, the segments' names). None for what the Python reference "
     "(view_in_python) must read: a missing key, or a value of a type the stream worker or "
     "the profile store does not write."},
    {"user_context", FASTCALL(user_context),
     "user_context(cls, view) -> tuple | None\n\nThe recommender's UserContext of a feature "
     "view (models/recommend/base.py), an instance of ``cls`` (a tuple subclass) built from "
     "its fields without its ``__new__``. None for an empty view or one the Python path "
     "must read: another mapping, a text that is not an exact str, article ids that are not "
     "a list of exact str, a personalization that is not a bool."},
    {"context_vector", FASTCALL(context_vector),
     "context_vector(view, vip_tiers, constants) -> dict | None\n\nThe bandit's context of "
     "a feature view (features/context_vector.py): ``constants`` is (its keys, the segments, "
     "the tier groups, the caps of the events' and the sessions' counts and the recency "
     "scale, floats). None for what the Python reference must read: a missing key, a value "
     "that is not of the type the feature view makes."},
    {"action_features", FASTCALL(action_features),
     "action_features(view, variants, priors, names, prior_weight) -> dict | None\n\nPer "
     "offered variant, the customer's memory of it as the bandit's action features "
     "(features/context.py): ``names`` the three features' keys, ``priors`` each variant's "
     "segment prior, ``prior_weight`` its weight in pseudo-outcomes. None for what the "
     "Python reference must read: a value of another type, a missing recent weight, more "
     "than 64 variants."},
    {"answer_payload", FASTCALL(answer_payload),
     "answer_payload(decision, prediction, cited, segment, consent, timings) -> dict | None"
     "\n\nThe personalize answer as JSON-ready data (services/decisions/records.py): the "
     "decision (its record and text), the intent prediction, the cited articles as "
     "(recommendation, url, snippet), the user's segment, the consent (a bool) and the "
     "timings. None for a part of another shape than the decision service makes: the "
     "Python path reads it."},
    {"slot_layout", FASTCALL(slot_layout),
     "slot_layout(cls, names) -> capsule\n\nWhere each of ``names`` is among the slots of "
     "``cls``, a class of object slots alone (none inherited, no ``__dict__``), for "
     "build_slotted. TypeError for another class, or names that are not its slots."},
    {"build_slotted", FASTCALL(build_slotted),
     "build_slotted(layout, *values) -> object\n\nAn instance of the layout's class, its "
     "slots set to ``values`` in the layout's names' order, without calling the class."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tailorbot._native",
    .m_doc = "Compiled hot loops of the serving path (see src/tailorbot/csrc/native.h).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyTypeObject *types[] = {&NgramScorerType, &TermIndexType, &TallyCounterType,
                             &TallyHistogramType};
    const char *names[] = {"NgramScorer", "TermIndex", "TallyCounter", "TallyHistogram"};
    enum { TYPES = sizeof types / sizeof types[0] };
    for (int i = 0; i < TYPES; i++) {
        if (PyType_Ready(types[i]) < 0) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) {
        return NULL;
    }
    for (int i = 0; i < TYPES; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
