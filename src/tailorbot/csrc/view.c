/* The feature view in one call (features/view.py, feature_view): every key, made by the same
 * passes as the Python reference (view_in_python) in the same order, the compiled passes
 * over the messages, the sessions and the memory (messages.c, sessions.c, memory.c) called
 * directly, the other parts made in view_parts.c and view_articles.c. Anything of a type the
 * stream worker or the profile store does not write is left to the Python reference (None:
 * it reads it, or raises). */
#include "view.h"

/* state[key] as a new reference; NULL with no error set when it is missing */
static PyObject *held(PyObject *dict, int key) {
    return Py_XNewRef(PyDict_GetItemWithError(dict, view_keys[key]));
}

/* the view's next name set to `value` (a new reference, stolen; NULL: an error is set) */
static int put(PyObject *view, PyObject *names, Py_ssize_t *at, PyObject *value) {
    if (value == NULL) {
        return -1;
    }
    int failed = PyDict_SetItem(view, PyTuple_GET_ITEM(names, *at), value);
    Py_DECREF(value);
    (*at)++;
    return failed;
}

/* the items of a list (of counts) as the view's next names */
static int put_items(PyObject *view, PyObject *names, Py_ssize_t *at, PyObject *list,
                     Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        if (put(view, names, at, Py_NewRef(PyList_GET_ITEM(list, k))) < 0) {
            return -1;
        }
    }
    return 0;
}

/* feature_view(state, record, profile, now, personalized, constants, rules): see module.c */
PyObject *feature_view(PyObject *module, FASTCALL_ARGS) {
    if (!arity("feature_view", nargs, 7) || intern_names(view_keys, VIEW_KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *state = args[0], *record = args[1], *profile = args[2], *now_obj = args[3];
    PyObject *constants = args[5], *rules = args[6];
    if (!PyDict_CheckExact(state) || !PyFloat_CheckExact(now_obj) ||
        !PyTuple_CheckExact(constants) || PyTuple_GET_SIZE(constants) != N_CONSTANTS ||
        !PyTuple_CheckExact(rules) || PyTuple_GET_SIZE(rules) != N_RULES) {
        Py_RETURN_NONE;
    }
    PyObject **c = ((PyTupleObject *)constants)->ob_item, **r = ((PyTupleObject *)rules)->ob_item;
    PyObject *names = c[C_NAMES];
    if (!PyTuple_CheckExact(names) || PyTuple_GET_SIZE(names) != N_NAMES ||
        !PyTuple_CheckExact(c[C_EVENT_WIDTHS]) ||
        PyTuple_GET_SIZE(c[C_EVENT_WIDTHS]) != EVENT_WINDOWS ||
        !PyTuple_CheckExact(c[C_SESSION_WIDTHS]) ||
        PyTuple_GET_SIZE(c[C_SESSION_WIDTHS]) != SESSION_WINDOWS ||
        !PyFloat_CheckExact(c[C_RETENTION]) || !PyFloat_CheckExact(c[C_DECAY]) ||
        !PyFloat_CheckExact(r[R_CSAT]) || !PyLong_CheckExact(r[R_STREAK]) ||
        !PyFrozenSet_CheckExact(r[R_VIP_TIERS]) || !PyLong_CheckExact(r[R_FREQUENT]) ||
        !PyFloat_CheckExact(r[R_NEW_FOR]) || !PyTuple_CheckExact(r[R_SEGMENTS]) ||
        PyTuple_GET_SIZE(r[R_SEGMENTS]) != N_SEGMENTS) {
        Py_RETURN_NONE;
    }
    /* `profile or {}`: None or an empty one as no profile; another mapping is Python's */
    if (profile == Py_None || (PyDict_CheckExact(profile) && PyDict_GET_SIZE(profile) == 0)) {
        profile = NULL;
    } else if (!PyDict_CheckExact(profile)) {
        Py_RETURN_NONE;
    }
    double now = PyFloat_AS_DOUBLE(now_obj);
    PyObject *v[N_KEYS] = {NULL}; /* the state's values read, then the record's, held */
    for (int k = 0; k < K_V; k++) {
        v[k] = held(state, k);
    }
    PyObject *view = NULL, *result = NULL, *messages = NULL, *sessions = NULL,
             *memory = NULL, *articles = NULL, *oldest = NULL, *totals = NULL;
    PyObject *made[9] = {NULL}; /* the view's values made before it: see below */
    enum { M_BOT, M_EWMA, M_CHANNEL, M_CSAT_AVG, M_PRODUCTS, M_ATTRIBUTES, M_SEGMENTS,
           M_TIER, M_MEAN };
    if (PyErr_Occurred()) {
        goto done;
    }
    /* what the Python reference reads with state[key] (the rest with state.get) */
    for (int k = 0; k < K_V; k++) {
        if (v[k] == NULL && k != K_BOT && k != K_OUTCOMES && k != K_TOTALS) {
            goto done; /* a KeyError for the Python path to raise */
        }
    }
    if (record != Py_None) {
        for (int k = K_USER_ID; k <= K_UPDATED_AT; k++) {
            if ((v[k] = PyObject_GetAttr(record, view_keys[k])) == NULL) {
                goto done;
            }
        }
    }
    double newest = 0.0, alpha = 0.0;
    if ((v[K_NEWEST] != Py_None && !PyFloat_CheckExact(v[K_NEWEST])) ||
        !PyList_CheckExact(v[K_CM_TS]) || !PyLong_CheckExact(v[K_CSAT_N]) ||
        !PyList_CheckExact(v[K_RATINGS]) || !PyDict_CheckExact(v[K_SESSIONS]) ||
        !PyDict_CheckExact(v[K_VIEWS]) || !PyDict_CheckExact(v[K_FEEDBACK]) ||
        !PyDict_CheckExact(v[K_RESOLVED]) || !PyDict_CheckExact(v[K_CHANNELS])) {
        goto done;
    }
    if (v[K_NEWEST] != Py_None) {
        newest = PyFloat_AS_DOUBLE(v[K_NEWEST]);
    }
    /* `state["alpha"] or 0.0`: a float, or a false value */
    if (PyFloat_CheckExact(v[K_ALPHA])) {
        alpha = PyFloat_AS_DOUBLE(v[K_ALPHA]);
    } else if (v[K_ALPHA] != Py_None) {
        goto done;
    }
    /* the memory's totals and outcomes: `state.get("outcome_totals") or {"v": {}, "a": {}}`,
     * `state.get("outcomes", ())` */
    if (v[K_TOTALS] != NULL && PyObject_IsTrue(v[K_TOTALS])) {
        if (!PyDict_CheckExact(v[K_TOTALS])) {
            goto done;
        }
        v[K_V] = held(v[K_TOTALS], K_V);
        v[K_A] = v[K_V] == NULL ? NULL : held(v[K_TOTALS], K_A);
        if (v[K_A] == NULL || !PyDict_CheckExact(v[K_V]) || !PyDict_CheckExact(v[K_A])) {
            goto done;
        }
    }
    int any_outcome = (v[K_OUTCOMES] != NULL && PyObject_IsTrue(v[K_OUTCOMES])) ||
                      (v[K_V] != NULL && PyDict_GET_SIZE(v[K_V]) > 0) ||
                      (v[K_A] != NULL && PyDict_GET_SIZE(v[K_A]) > 0);
    if (PyErr_Occurred()) {
        goto done;
    }
    /* the compiled passes, each None for what the Python path reads */
    PyObject *pass[4] = {state, now_obj, c[C_EVENT_WIDTHS], c[C_RATE_WINDOW]};
    messages = message_features(module, pass, 4);
    if (messages == NULL || messages == Py_None) {
        goto done;
    }
    pass[0] = v[K_SESSIONS];
    pass[2] = c[C_SESSION_WIDTHS];
    sessions = session_summary(module, pass, 4);
    if (sessions == NULL || sessions == Py_None) {
        goto done;
    }
    PyObject *windows = PyTuple_GET_ITEM(sessions, 0); /* the sessions' counts */
    if (PyList_GET_SIZE(windows) != SESSION_WINDOWS) {
        goto done;
    }
    if (any_outcome) {
        oldest = PyFloat_FromDouble(now - PyFloat_AS_DOUBLE(c[C_RETENTION]));
        totals = oldest == NULL ? NULL : PyDict_New(); /* for a missing `v` or `a` */
        if (totals == NULL) {
            goto done;
        }
        PyObject *outcomes = v[K_OUTCOMES] != NULL ? v[K_OUTCOMES] : PyTuple_New(0);
        PyObject *mem[6] = {outcomes, v[K_V] != NULL ? v[K_V] : totals,
                            v[K_A] != NULL ? v[K_A] : totals, now_obj, oldest, c[C_DECAY]};
        memory = outcomes == NULL ? NULL : memory_summaries(module, mem, 6);
        if (v[K_OUTCOMES] == NULL) {
            Py_XDECREF(outcomes);
        }
        if (memory == NULL || memory == Py_None) {
            goto done;
        }
    }
    PyObject *live = PyTuple_GET_ITEM(sessions, 5); /* the sessions' resolutions */
    /* a user without article activity (most users): five empty lists, nothing sorted */
    if (PyDict_GET_SIZE(v[K_VIEWS]) > 0 || PyDict_GET_SIZE(v[K_FEEDBACK]) > 0 ||
        PyDict_GET_SIZE(v[K_RESOLVED]) > 0 || PyDict_GET_SIZE(live) > 0) {
        articles = article_lists(v[K_VIEWS], v[K_FEEDBACK], v[K_RESOLVED], live);
        if (articles == NULL) {
            goto done;
        }
    }
    /* the values that may leave the view to Python, made before it (NULL with no error
     * set: Python's to read) */
    if ((made[M_BOT] = unanswered_bot_message(v[K_BOT], v[K_CM_TS])) == NULL ||
        (made[M_EWMA] = ewma_of(v[K_EWMA], alpha, v[K_RATINGS])) == NULL ||
        (made[M_CHANNEL] = preferred_channel(v[K_CHANNELS])) == NULL ||
        (made[M_MEAN] = mean_of(PyTuple_GET_ITEM(sessions, 4))) == NULL ||
        profile_copies(profile, &made[M_PRODUCTS]) < 0 ||
        (made[M_TIER] = profile_value(profile, K_TIER, c[C_TIER])) == NULL ||
        (made[M_SEGMENTS] = segments_of(rules, made[M_EWMA], PyTuple_GET_ITEM(sessions, 3),
                                        made[M_TIER], PyList_GET_ITEM(windows, 0),
                                        v[K_FIRST], now)) == NULL) {
        goto done;
    }
    double sum;
    Py_ssize_t rated = PyLong_AsSsize_t(v[K_CSAT_N]);
    if (rated == -1 && PyErr_Occurred()) {
        PyErr_Clear(); /* a count beyond a C integer: the Python path reads it */
        goto done;
    } else if (rated == 0) {
        made[M_CSAT_AVG] = Py_NewRef(Py_None);
    } else if (exact_double(v[K_CSAT_SUM], &sum) && (double)rated <= EXACT_INTS) {
        made[M_CSAT_AVG] = PyFloat_FromDouble(sum / (double)rated);
    }
    if (made[M_CSAT_AVG] == NULL) {
        goto done;
    }
    PyObject *events = PyTuple_GET_ITEM(messages, 0), *texts = PyTuple_GET_ITEM(messages, 1);
    PyObject *ranked = PyTuple_GET_ITEM(messages, 3);
    PyObject *top = Py_None, *first_intent, *count;
    Py_ssize_t pos = 0;
    if (PyDict_Next(ranked, &pos, &first_intent, &count)) {
        top = first_intent; /* the most frequent: next(iter(ranked), None) */
    }
    PyObject *none = Py_None;
    view = NEW_SIZED_DICT(N_NAMES);
    Py_ssize_t at = 0;
    /* in VIEW_NAMES' order; each put steals its value, and stops at the first failure */
    int failed =
        view == NULL || put(view, names, &at, Py_NewRef(v[K_USER_ID] ? v[K_USER_ID] : none)) < 0 ||
        put(view, names, &at, Py_NewRef(now_obj)) < 0 ||
        put(view, names, &at, Py_NewRef(args[4])) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_N])) < 0 ||
        put_items(view, names, &at, events, EVENT_WINDOWS) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_N_CM])) < 0 ||
        put_items(view, names, &at, texts, EVENT_WINDOWS) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_FIRST])) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_NEWEST])) < 0 ||
        put(view, names, &at,
            v[K_NEWEST] == Py_None ? Py_NewRef(Py_None)
                                   : PyFloat_FromDouble(now - newest > 0.0 ? now - newest
                                                                           : 0.0)) < 0 ||
        put(view, names, &at, Py_NewRef(PyTuple_GET_ITEM(messages, 2))) < 0 ||
        put(view, names, &at, Py_NewRef(ranked)) < 0 ||
        put(view, names, &at, Py_NewRef(top)) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_BOT])) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_CSAT_N])) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_CSAT_AVG])) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_EWMA])) < 0 ||
        put_items(view, names, &at, windows, SESSION_WINDOWS) < 0 ||
        put(view, names, &at, Py_NewRef(PyTuple_GET_ITEM(sessions, 1))) < 0 ||
        put(view, names, &at, Py_NewRef(PyTuple_GET_ITEM(sessions, 2))) < 0 ||
        put(view, names, &at, Py_NewRef(PyTuple_GET_ITEM(sessions, 3))) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_MEAN])) < 0;
    /* the article lists: empty ones for a user without article activity */
    for (int k = 0; !failed && k < 5; k++) {
        PyObject *list = articles != NULL ? Py_NewRef(PyTuple_GET_ITEM(articles, k))
                         : k < 4          ? PyList_New(0)
                                          : PyDict_New();
        failed = put(view, names, &at, list) < 0;
    }
    failed =
        failed ||
        put(view, names, &at,
            memory != NULL ? Py_NewRef(PyTuple_GET_ITEM(memory, 0)) : PyDict_New()) < 0 ||
        put(view, names, &at,
            memory != NULL ? Py_NewRef(PyTuple_GET_ITEM(memory, 1)) : PyDict_New()) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_CHANNEL])) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_LATE])) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_CUT_CAP] != Py_None ? Py_True : Py_False)) < 0 ||
        put(view, names, &at, profile_value(profile, K_NAME, none)) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_TIER])) < 0 ||
        put(view, names, &at, profile_value(profile, K_LANGUAGE, c[C_LANGUAGE])) < 0 ||
        put(view, names, &at, profile_value(profile, K_REGION, none)) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_PRODUCTS])) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_ATTRIBUTES])) < 0 ||
        put(view, names, &at, Py_NewRef(made[M_SEGMENTS])) < 0 ||
        put(view, names, &at, Py_NewRef(PyList_GET_ITEM(made[M_SEGMENTS], 0))) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_EVENT_TIME] ? v[K_EVENT_TIME] : none)) < 0 ||
        put(view, names, &at, Py_NewRef(v[K_UPDATED_AT] ? v[K_UPDATED_AT] : none)) < 0;
    if (!failed) {
        result = Py_NewRef(view);
    }
done:
    if (result == NULL && !PyErr_Occurred()) { /* what the Python path reads, or raises on */
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(view);
    Py_XDECREF(messages);
    Py_XDECREF(sessions);
    Py_XDECREF(memory);
    Py_XDECREF(articles);
    Py_XDECREF(oldest);
    Py_XDECREF(totals);
    for (int k = 0; k < 9; k++) {
        Py_XDECREF(made[k]);
    }
    for (int k = 0; k < N_KEYS; k++) {
        Py_XDECREF(v[k]);
    }
    return result;
}
