/* TallyCounter and TallyHistogram: the children of _tallies.py's counters and histograms,
 * their `inc` and `observe` in C.
 *
 * Each adds to this thread's row of its series, `local.rows[key]` (a threading.local: a
 * thread writes its own rows only, and _PerThread.summed adds up every thread's), as the
 * Python children (_CounterChild, _HistogramChild) do, and hands everything else to the
 * Python child's method it was given, `fallback`: a thread's first count or a series' (the
 * row is made there), an amount that is not a float or an int a double holds exactly, a
 * negative or NaN count (refused there), keywords. A decision counts half a dozen figures; the
 * Python method took some 2,000 instructions each, mostly the frame and the reads. */
#include "native.h"

typedef struct {
    PyObject_HEAD
    PyObject *local;    /* the tally's threading.local: .rows, this thread's rows */
    PyObject *key;      /* the series' label values: a tuple */
    PyObject *fallback; /* the Python child's method */
    Py_ssize_t width;   /* a row's length: 1 for a counter; the buckets, +Inf, sum */
    double *bounds;     /* a histogram's finite bucket bounds, ascending (width - 2) */
    /* The row found last, and the thread it is of (its thread state's id: never reused in
     * the interpreter, where a thread's ident is reused once it ended). One thread counts
     * almost every figure (a server's decisions are made on one): reading `local.rows` took
     * more than the rest of the call. Greenlets sharing a thread (gevent's per-greenlet
     * threading.local) are not told apart: tailorbot serves on threads and asyncio. */
    uint64_t thread;
    PyObject *row;
} Tally;

static PyObject *rows_name = NULL; /* "rows", interned */

static int Tally_init_common(Tally *self, PyObject *local, PyObject *key, PyObject *fallback) {
    if (!PyTuple_Check(key) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "a tally child takes (local, key tuple, fallback)");
        return -1;
    }
    if (rows_name == NULL && (rows_name = PyUnicode_InternFromString("rows")) == NULL) {
        return -1;
    }
    Py_INCREF(local);
    Py_INCREF(key);
    Py_INCREF(fallback);
    Py_XSETREF(self->local, local);
    Py_XSETREF(self->key, key);
    Py_XSETREF(self->fallback, fallback);
    Py_CLEAR(self->row); /* another series' */
    return 0;
}

/* keywords are refused, as PyArg_ParseTupleAndKeywords would refuse names it does not know */
static int no_keywords(const char *name, PyObject *kwds) {
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
        return 0;
    }
    return 1;
}

static int TallyCounter_init(Tally *self, PyObject *args, PyObject *kwds) {
    PyObject *local, *key, *fallback;
    if (!no_keywords("TallyCounter", kwds)) {
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOO:TallyCounter", &local, &key, &fallback) ||
        Tally_init_common(self, local, key, fallback) < 0) {
        return -1;
    }
    self->width = 1;
    return 0;
}

static int TallyHistogram_init(Tally *self, PyObject *args, PyObject *kwds) {
    PyObject *local, *key, *bounds, *fallback;
    if (!no_keywords("TallyHistogram", kwds)) {
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOO!O:TallyHistogram", &local, &key, &PyTuple_Type, &bounds,
                          &fallback)) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(bounds);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyFloat_CheckExact(PyTuple_GET_ITEM(bounds, i))) {
            PyErr_SetString(PyExc_TypeError, "bucket bounds must be floats");
            return -1;
        }
    }
    /* no order is checked: the histogram checked it, and bucket_of probes as bisect_left
     * does whatever the order (a NaN bound included) */
    double *copied = PyMem_Malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (copied == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        copied[i] = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(bounds, i));
    }
    if (Tally_init_common(self, local, key, fallback) < 0) { /* checked before any change */
        PyMem_Free(copied);
        return -1;
    }
    PyMem_Free(self->bounds);
    self->bounds = copied;
    self->width = n + 2;
    return 0;
}

static void Tally_dealloc(Tally *self) {
    Py_XDECREF(self->row);
    Py_XDECREF(self->local);
    Py_XDECREF(self->key);
    Py_XDECREF(self->fallback);
    PyMem_Free(self->bounds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* This thread's row of the series (a new reference to the exact list of `width` floats),
 * or NULL: with an error set when reading failed, without one when the row is not there or
 * not of that shape (the Python child makes or reads it). */
static PyObject *thread_row(Tally *self) {
    uint64_t thread = PyThreadState_GetID(PyThreadState_Get());
    if (self->row != NULL && self->thread == thread &&
        PyList_GET_SIZE(self->row) == self->width) {
        Py_INCREF(self->row); /* the same list for as long as the thread lives */
        return self->row;
    }
    PyObject *rows = PyObject_GetAttr(self->local, rows_name);
    if (rows == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear(); /* this thread's first count */
        }
        return NULL;
    }
    PyObject *row = PyDict_CheckExact(rows) ? PyDict_GetItemWithError(rows, self->key) : NULL;
    if (row != NULL && PyList_CheckExact(row) && PyList_GET_SIZE(row) == self->width) {
        Py_INCREF(row);
        Py_INCREF(row);
        Py_XSETREF(self->row, row);
        self->thread = thread;
    } else {
        row = NULL;
    }
    Py_DECREF(rows);
    return row;
}

/* row[i] += amount, where row[i] is a float (0 when it is not: nothing was changed) */
static int add_at(PyObject *row, Py_ssize_t i, double amount) {
    PyObject *old = PyList_GET_ITEM(row, i);
    if (!PyFloat_CheckExact(old)) {
        return 0;
    }
    PyObject *sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(old) + amount);
    if (sum == NULL) {
        return -1;
    }
    PyList_SET_ITEM(row, i, sum);
    Py_DECREF(old);
    return 1;
}

static PyObject *handed_over(Tally *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames) {
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

/* 0 with a TypeError for a child made without __init__ (Tally.__new__ alone) */
static int initialized(const Tally *self) {
    if (self->fallback == NULL) {
        PyErr_SetString(PyExc_TypeError, "a tally child made without __init__");
        return 0;
    }
    return 1;
}

static PyObject *TallyCounter_inc(Tally *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    double amount = 1.0;
    if (!initialized(self)) {
        return NULL;
    }
    if (kwnames != NULL || nargs > 1 || (nargs == 1 && !exact_double(args[0], &amount)) ||
        !(amount >= 0.0)) {
        return handed_over(self, args, (size_t)nargs, kwnames);
    }
    PyObject *row = thread_row(self);
    if (row == NULL) {
        return PyErr_Occurred() ? NULL : handed_over(self, args, (size_t)nargs, kwnames);
    }
    int added = add_at(row, 0, amount);
    Py_DECREF(row);
    if (added < 0) {
        return NULL;
    }
    if (added == 0) {
        return handed_over(self, args, (size_t)nargs, kwnames);
    }
    Py_RETURN_NONE;
}

/* bisect.bisect_left over the bounds: the first bucket whose bound is >= amount (the last,
 * +Inf, when none is) */
static Py_ssize_t bucket_of(const Tally *self, double amount) {
    Py_ssize_t lo = 0, hi = self->width - 2;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (self->bounds[mid] < amount) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static PyObject *TallyHistogram_observe(Tally *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames) {
    double amount;
    if (!initialized(self)) {
        return NULL;
    }
    if (kwnames != NULL || nargs != 1 || !exact_double(args[0], &amount)) {
        return handed_over(self, args, (size_t)nargs, kwnames);
    }
    PyObject *row = thread_row(self);
    if (row == NULL) {
        return PyErr_Occurred() ? NULL : handed_over(self, args, (size_t)nargs, kwnames);
    }
    Py_ssize_t sum = self->width - 1;
    Py_ssize_t bucket = amount == amount ? bucket_of(self, amount) : -1; /* NaN: the sum alone */
    /* both items checked before either changes: a row is changed whole or not at all */
    if (!PyFloat_CheckExact(PyList_GET_ITEM(row, sum)) ||
        (bucket >= 0 && !PyFloat_CheckExact(PyList_GET_ITEM(row, bucket)))) {
        Py_DECREF(row);
        return handed_over(self, args, (size_t)nargs, kwnames);
    }
    int added = add_at(row, sum, amount);
    if (added > 0 && bucket >= 0) {
        added = add_at(row, bucket, 1.0);
    }
    Py_DECREF(row);
    if (added < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

#define VECTORCALL_METHOD(function) \
    ((PyCFunction)(void (*)(void))(function)), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef TallyCounter_methods[] = {
    {"inc", VECTORCALL_METHOD(TallyCounter_inc),
     "inc(amount=1.0) -> None\n\nAdds ``amount`` to this thread's count of the series."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef TallyHistogram_methods[] = {
    {"observe", VECTORCALL_METHOD(TallyHistogram_observe),
     "observe(amount) -> None\n\nAdds ``amount`` to this thread's sum of the series, and one "
     "to its count in the first bucket whose bound is at least ``amount`` (NaN: the sum "
     "alone)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject TallyCounterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.TallyCounter",
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TallyCounter(local, key, fallback)\n\nA counter's child of _tallies.py: "
              "``inc`` adds to ``local.rows[key][0]``, this thread's count, and calls "
              "``fallback`` (the Python child's ``inc``) for what it does not add itself.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TallyCounter_init,
    .tp_dealloc = (destructor)Tally_dealloc,
    .tp_methods = TallyCounter_methods,
};

PyTypeObject TallyHistogramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.TallyHistogram",
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TallyHistogram(local, key, bounds, fallback)\n\nA histogram's child of "
              "_tallies.py: ``observe`` adds to ``local.rows[key]``, this thread's row (a "
              "count per bucket of the tuple of float ``bounds``, then +Inf's, then the "
              "sum), and calls ``fallback`` (the Python child's ``observe``) for what it "
              "does not add itself.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TallyHistogram_init,
    .tp_dealloc = (destructor)Tally_dealloc,
    .tp_methods = TallyHistogram_methods,
};
