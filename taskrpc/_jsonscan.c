/* One pass over a JSON body counting its arrays, objects and items, before it is parsed.
 *
 * The worker's element budget (taskrpc.budgets) counts the '[', '{' and ',' outside
 * strings. In Python that takes several passes over the bytes when strings are dense with
 * escapes; here it is one: memchr across a string without escapes, byte by byte through
 * one with them, eight bytes a step between strings.
 * Optional: taskrpc.budgets falls back to its pure-Python count when this is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Bytes outside strings: 1 counts as an element, 2 opens a string, 0 is anything else. */
static unsigned char outside[256];

/* Bytes inside strings that need a look: the closing quote and the escaping backslash. */
static unsigned char in_string[256];

/* Below this size the count runs holding the GIL: releasing it costs more than it saves. */
#define RELEASE_GIL_FROM 65536

/* The index of the first byte of s[i:n] that ``table`` marks, or n: eight bytes a step
 * while none is marked. For the bytes outside strings, where marked ones are never dense
 * for long (the count stops past its limit). */
static inline Py_ssize_t
skip(const unsigned char *table, const unsigned char *s, Py_ssize_t i, Py_ssize_t n)
{
    while (i + 8 <= n
           && !(table[s[i]] | table[s[i + 1]] | table[s[i + 2]] | table[s[i + 3]]
                | table[s[i + 4]] | table[s[i + 5]] | table[s[i + 6]] | table[s[i + 7]]))
        i += 8;
    while (i < n && !table[s[i]])
        i++;
    return i;
}

/* The '[', '{' and ',' of s[0:n] outside strings, at most limit + 1 (counting stops
 * there); -1 if s ends inside a string. */
static Py_ssize_t
count_elements(const unsigned char *s, Py_ssize_t n, Py_ssize_t limit)
{
    Py_ssize_t i = 0, marks = 0;
    for (;;) {
        i = skip(outside, s, i, n);
        if (i >= n)
            return marks;
        if (outside[s[i++]] == 1) {
            if (++marks > limit)
                return limit + 1;
            continue;
        }
        /* A string. Most hold no backslash: then it ends at the next quote. */
        const unsigned char *quote = memchr(s + i, '"', (size_t)(n - i));
        if (quote == NULL)
            return -1;
        if (memchr(s + i, '\\', (size_t)(quote - s - i)) == NULL) {
            i = quote - s + 1;
            continue;
        }
        /* Else byte by byte: a backslash escapes the byte after it, whatever it is. */
        for (;;) {
            while (i < n && !in_string[s[i]])  /* escapes may be dense: no look-ahead */
                i++;
            if (i >= n)
                return -1;
            if (s[i++] == '"')
                break;
            i++;
        }
    }
}

static PyObject *
jsonscan_count_elements(PyObject *module, PyObject *args)
{
    Py_buffer body;
    Py_ssize_t limit, count;
    if (!PyArg_ParseTuple(args, "y*n:count_elements", &body, &limit))
        return NULL;
    if (limit < 0) {
        PyBuffer_Release(&body);
        PyErr_SetString(PyExc_ValueError, "limit must not be negative");
        return NULL;
    }
    if (body.len >= RELEASE_GIL_FROM) {
        Py_BEGIN_ALLOW_THREADS
        count = count_elements((const unsigned char *)body.buf, body.len, limit);
        Py_END_ALLOW_THREADS
    }
    else {
        count = count_elements((const unsigned char *)body.buf, body.len, limit);
    }
    PyBuffer_Release(&body);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef jsonscan_methods[] = {
    {"count_elements", jsonscan_count_elements, METH_VARARGS,
     "count_elements(body, limit, /)\n--\n\n"
     "The '[', '{' and ',' of JSON ``body`` outside its strings, counted up to\n"
     "``limit + 1`` at most; ``-1`` if ``body`` ends inside a string."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef jsonscan_module = {
    PyModuleDef_HEAD_INIT,
    "taskrpc._jsonscan",
    "Compiled count of a JSON body's elements (see taskrpc.budgets).",
    0,
    jsonscan_methods,
};

PyMODINIT_FUNC
PyInit__jsonscan(void)
{
    outside['['] = outside['{'] = outside[','] = 1;
    outside['"'] = 2;
    in_string['"'] = in_string['\\'] = 1;
    return PyModule_Create(&jsonscan_module);
}
