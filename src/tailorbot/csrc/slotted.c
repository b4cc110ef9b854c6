/* slot_layout and build_slotted: an instance of a class of object slots built from its
 * fields' values without calling the class (compiled.slotted_builder: a frozen dataclass
 * whose slots are its fields, with no __post_init__). A frozen dataclass's __init__ sets
 * each field through object.__setattr__, a call of its own, some 1.2 k instructions a
 * field; a decision builds a few (its intent predictions, the bandit's choice).
 *
 * CPython lays a class's slots out in the order of their sorted names, not the fields'
 * order, so slot_layout finds each field's slot by name once, and build_slotted writes
 * the values where the layout says. The layout is a capsule that holds its class: a
 * build can only write the slots of the class it was made for. */
#include "native.h"
#include "structmember.h"

static const char LAYOUT[] = "tailorbot._native.slot_layout";

typedef struct {
    PyTypeObject *type;
    Py_ssize_t n;
    Py_ssize_t offsets[]; /* of the slot of each field, in the fields' order */
} SlotLayout;

static void layout_free(PyObject *capsule) {
    SlotLayout *layout = PyCapsule_GetPointer(capsule, LAYOUT);
    if (layout != NULL) {
        Py_DECREF(layout->type);
        PyMem_Free(layout);
    }
}

/* The class's own object slots (nothing inherited, no __dict__): their count, or -1 with
 * a TypeError. */
static Py_ssize_t object_slots(PyTypeObject *type) {
    PyMemberDef *members = type->tp_members;
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE) || members == NULL ||
        type->tp_base != &PyBaseObject_Type || type->tp_dictoffset != 0) {
        PyErr_Format(PyExc_TypeError, "%s is not a class of slots alone", type->tp_name);
        return -1;
    }
    Py_ssize_t n = 0;
    for (; members[n].name != NULL; n++) {
        if (members[n].type != T_OBJECT_EX || (members[n].flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "%s's slot %s is not an object slot", type->tp_name,
                         members[n].name);
            return -1;
        }
    }
    return n;
}

PyObject *slot_layout(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "slot_layout(cls, names): a class and a tuple");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    PyObject *names = args[1];
    Py_ssize_t n = object_slots(type);
    if (n < 0) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(names) != n) {
        PyErr_Format(PyExc_TypeError, "%s has %zd slots, not %zd", type->tp_name, n,
                     PyTuple_GET_SIZE(names));
        return NULL;
    }
    SlotLayout *layout = PyMem_Malloc(sizeof(SlotLayout) + (size_t)n * sizeof(Py_ssize_t));
    if (layout == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *name = PyTuple_GET_ITEM(names, j);
        const char *wanted = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
        Py_ssize_t found = -1;
        for (Py_ssize_t i = 0; wanted != NULL && i < n; i++) {
            if (strcmp(type->tp_members[i].name, wanted) == 0) {
                found = i;
            }
        }
        for (Py_ssize_t k = 0; found >= 0 && k < j; k++) {
            if (layout->offsets[k] == type->tp_members[found].offset) {
                found = -1; /* a name given twice */
            }
        }
        if (found < 0) {
            PyMem_Free(layout);
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "%s has no slot %R (or it was named twice)",
                             type->tp_name, name);
            }
            return NULL;
        }
        layout->offsets[j] = type->tp_members[found].offset;
    }
    layout->n = n;
    layout->type = type;
    Py_INCREF(type);
    PyObject *capsule = PyCapsule_New(layout, LAYOUT, layout_free);
    if (capsule == NULL) {
        Py_DECREF(type);
        PyMem_Free(layout);
    }
    return capsule;
}

PyObject *build_slotted(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    SlotLayout *layout = nargs >= 1 ? PyCapsule_GetPointer(args[0], LAYOUT) : NULL;
    if (layout == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "build_slotted(layout, *values): no layout");
        }
        return NULL;
    }
    if (nargs - 1 != layout->n) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd values, not %zd", layout->type->tp_name,
                     layout->n, nargs - 1);
        return NULL;
    }
    PyObject *made = layout->type->tp_alloc(layout->type, 0); /* zeroed; tracked if GC */
    if (made == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < layout->n; j++) {
        PyObject *value = args[j + 1];
        Py_INCREF(value);
        *(PyObject **)((char *)made + layout->offsets[j]) = value;
    }
    return made;
}

PyObject *tuple_of(PyObject *type, PyObject **fields, Py_ssize_t n) {
    PyObject *made = NULL;
    int complete = 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        complete = complete && fields[k] != NULL;
    }
    if (complete) {
        made = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n); /* zeroed */
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (made != NULL) {
            PyTuple_SET_ITEM(made, k, fields[k]);
        } else {
            Py_XDECREF(fields[k]);
        }
    }
#if PY_VERSION_HEX >= 0x030E0000
    /* From 3.14 a tuple keeps its hash, -1 until first computed: tuple.__new__ sets it, and
     * left at the allocation's 0 every such tuple would hash to 0 */
    if (made != NULL) {
        ((PyTupleObject *)made)->ob_hash = -1;
    }
#endif
    return made;
}
