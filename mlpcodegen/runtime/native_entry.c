/* ---- mlpcodegen runtime: native Python entry points (predict, scalar) ----
   Argument checks and calls only: -O1 halves what they add to gcc's time (the network's
   functions above keep the command line's -O3 and are not inlined here). */
#pragma GCC push_options
#pragma GCC optimize ("O1")
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <structmember.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

typedef @T@ mlpn__t;
#define MLPN__IN ((npy_intp)@IN@)
#define MLPN__OUT ((npy_intp)@OUT@)
#define MLPN__TYPE @NPY@
#define MLPN__SPLIT ((size_t)@SPLIT@)
#define MLPN__MAX_THREADS 256
#define MLPN__READY (NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED)
static const npy_intp mlpn__min_rows = @MIN_ROWS@;
static int mlpn__cpus = 1;

@BATCH@
@WORK@

typedef struct { const mlpn__t *x; mlpn__t *y; size_t n; } mlpn__job;

static void *mlpn__work(void *arg)
{
    mlpn__job *job = (mlpn__job *)arg;
    if (job->n) mlpn__batch(job->x, job->y, job->n);
    return NULL;
}

/* n rows over up to `threads` threads (this one included), in chunks of whole
   MLPN__SPLIT-row groups; a thread that cannot be started runs its chunk here. */
static void mlpn__run(const mlpn__t *x, mlpn__t *y, size_t n, size_t threads)
{
    pthread_t ids[MLPN__MAX_THREADS];
    mlpn__job jobs[MLPN__MAX_THREADS];
    int started[MLPN__MAX_THREADS];
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    size_t groups = (n + MLPN__SPLIT - 1) / MLPN__SPLIT, per, k, count = 0;
    if (threads > groups) threads = groups;
    if (threads <= 1) { if (have_attr) pthread_attr_destroy(&attr); mlpn__batch(x, y, n); return; }
    /* at least the stack the C states it needs (plus room), never less than the usual 8 MiB */
    if (have_attr) pthread_attr_setstacksize(&attr, (size_t)@STACK@ + ((size_t)1 << 20) > ((size_t)8 << 20) ?
                                             (size_t)@STACK@ + ((size_t)1 << 20) : ((size_t)8 << 20));
    per = (groups + threads - 1) / threads * MLPN__SPLIT;
    for (k = 0; k * per < n; ++k) {
        size_t start = k * per, rows = n - start < per ? n - start : per;
        jobs[k].x = x + start * (size_t)MLPN__IN; jobs[k].y = y + start * (size_t)MLPN__OUT; jobs[k].n = rows;
        started[k] = k > 0 && pthread_create(&ids[k], have_attr ? &attr : NULL, mlpn__work, &jobs[k]) == 0;
        count = k + 1;
    }
    for (k = 0; k < count; ++k) if (!started[k]) mlpn__work(&jobs[k]);
    for (k = 1; k < count; ++k) if (started[k]) pthread_join(ids[k], NULL);
    if (have_attr) pthread_attr_destroy(&attr);
}

static PyObject *mlpn__shape(PyArrayObject *a)
{
    int d, nd = PyArray_NDIM(a);
    PyObject *shape = PyTuple_New(nd);
    if (shape == NULL) return NULL;
    for (d = 0; d < nd; ++d) {
        PyObject *item = PyLong_FromSsize_t((Py_ssize_t)PyArray_DIM(a, d));
        if (item == NULL) { Py_DECREF(shape); return NULL; }
        PyTuple_SET_ITEM(shape, d, item);
    }
    return shape;
}

/* x as a C-contiguous, aligned array of the network's type, with the checks and
   messages of the Python path (CompiledNetwork._coerce). */
static PyArrayObject *mlpn__input(PyObject *x)
{
    PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(x, NULL, 0, 0, 0, NULL);
    PyObject *converted;
    int nd;
    char kind;
    if (a == NULL) return NULL;
    kind = PyArray_DESCR(a)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
        PyErr_Format(PyExc_ValueError, "expected real numbers, got an array of dtype %S", (PyObject *)PyArray_DESCR(a));
        Py_DECREF(a);
        return NULL;
    }
    nd = PyArray_NDIM(a);
    if (!((nd == 1 || nd == 2) && PyArray_DIM(a, nd - 1) == MLPN__IN)) {
        PyObject *shape = mlpn__shape(a);
        if (shape != NULL) {
            PyErr_Format(PyExc_ValueError, "expected shape (%zd,) for one sample or (n, %zd) for a batch, got %R",
                         (Py_ssize_t)MLPN__IN, (Py_ssize_t)MLPN__IN, shape);
            Py_DECREF(shape);
        }
        Py_DECREF(a);
        return NULL;
    }
    converted = PyArray_FromArray(a, PyArray_DescrFromType(MLPN__TYPE), MLPN__READY | NPY_ARRAY_FORCECAST);
    Py_DECREF(a);
    return (PyArrayObject *)converted;
}

/* out= checked: an ndarray of the network's type and the result's shape, writeable,
   C-contiguous and aligned (it is written in place, never copied). */
static int mlpn__check_out(PyObject *out, int nd, npy_intp *dims)
{
    PyArrayObject *o = (PyArrayObject *)out;
    if (!PyArray_Check(out)) {
        PyErr_Format(PyExc_TypeError, "out must be a NumPy array of dtype @DTYPE@, got %s", Py_TYPE(out)->tp_name);
        return -1;
    }
    if (PyArray_TYPE(o) != MLPN__TYPE || !PyArray_ISNOTSWAPPED(o) || PyArray_NDIM(o) != nd ||
        PyArray_DIM(o, 0) != dims[0] || (nd == 2 && PyArray_DIM(o, 1) != dims[1])) {
        PyObject *shape = mlpn__shape(o);
        if (shape != NULL) {
            if (nd == 1)
                PyErr_Format(PyExc_ValueError, "out must have shape (%zd,) and dtype @DTYPE@, got shape %R and dtype %S",
                             (Py_ssize_t)dims[0], shape, (PyObject *)PyArray_DESCR(o));
            else
                PyErr_Format(PyExc_ValueError, "out must have shape (%zd, %zd) and dtype @DTYPE@, got shape %R and dtype %S",
                             (Py_ssize_t)dims[0], (Py_ssize_t)dims[1], shape, (PyObject *)PyArray_DESCR(o));
            Py_DECREF(shape);
        }
        return -1;
    }
    if ((PyArray_FLAGS(o) & (MLPN__READY | NPY_ARRAY_WRITEABLE)) != (MLPN__READY | NPY_ARRAY_WRITEABLE)) {
        PyErr_SetString(PyExc_ValueError, "out must be writeable, C-contiguous and aligned (it is written in place)");
        return -1;
    }
    return 0;
}

/* threads=: None (0: chosen by the batch's size), else a positive int. */
static int mlpn__threads(PyObject *value, size_t *threads)
{
    long count;
    if (value == NULL || value == Py_None) { *threads = 0; return 0; }
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "threads must be a positive integer or None, got %s", Py_TYPE(value)->tp_name);
        return -1;
    }
    count = PyLong_AsLong(value);
    if (count == -1 && PyErr_Occurred()) return -1;
    if (count < 1) {
        PyErr_Format(PyExc_ValueError, "threads must be a positive integer or None, got %ld", count);
        return -1;
    }
    *threads = count > MLPN__MAX_THREADS ? MLPN__MAX_THREADS : (size_t)count;
    return 0;
}

static size_t mlpn__auto_threads(npy_intp n)
{
    npy_intp threads = n / mlpn__min_rows;
    if (threads > mlpn__cpus) threads = mlpn__cpus;
    return threads < 1 ? 1 : (size_t)threads;
}

/* Whether the byte ranges of a and b overlap other than as the very same buffer of the
   same shape (which every C function supports: it works in place). */
static int mlpn__overlap(PyArrayObject *a, PyArrayObject *b)
{
    char *pa = (char *)PyArray_DATA(a), *pb = (char *)PyArray_DATA(b);
    char *ea = pa + PyArray_NBYTES(a), *eb = pb + PyArray_NBYTES(b);
    if (pa == pb && MLPN__IN == MLPN__OUT) return 0;
    return pa < eb && pb < ea;
}

static PyObject *mlpn__general(PyObject *x, PyObject *out, PyObject *threads_arg)
{
    PyArrayObject *a, *y;
    npy_intp dims[2];
    size_t threads;
    int nd;
    if (mlpn__threads(threads_arg, &threads) < 0) return NULL;
    a = mlpn__input(x);
    if (a == NULL) return NULL;
    nd = PyArray_NDIM(a);
    dims[0] = nd == 1 ? MLPN__OUT : PyArray_DIM(a, 0);
    dims[1] = MLPN__OUT;
    if (out == NULL || out == Py_None) {
        y = (PyArrayObject *)PyArray_SimpleNew(nd, dims, MLPN__TYPE);
    } else if (mlpn__check_out(out, nd, dims) < 0) {
        y = NULL;
    } else {
        Py_INCREF(out);
        y = (PyArrayObject *)out;
        if (mlpn__overlap(a, y)) {  /* out shares memory with the input: read from a copy */
            PyArrayObject *copy = (PyArrayObject *)PyArray_NewCopy(a, NPY_CORDER);
            Py_DECREF(a);
            a = copy;
            if (a == NULL) { Py_DECREF(y); return NULL; }
        }
    }
    if (y == NULL) { Py_DECREF(a); return NULL; }
    if (nd == 1) {
        @RELEASE_ONE_BEGIN@
        @NAME@((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA(y));
        @RELEASE_ONE_END@
    } else if (dims[0] > 0) {
        size_t n = (size_t)dims[0];
        if (threads == 0) threads = mlpn__auto_threads(dims[0]);
        Py_BEGIN_ALLOW_THREADS
        mlpn__run((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA(y), n, threads);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(a);
    return (PyObject *)y;
}

static const char *mlpn__keywords[] = {"out", "threads"};

static PyObject *mlpn__predict(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *values[2] = {NULL, NULL};
    Py_ssize_t k, nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    (void)self;
    if (nargs == 1 && nkw == 0) {
        PyObject *x = args[0];
        if (PyArray_CheckExact(x)) {  /* one sample ready as it is: no conversion, no checks beyond these */
            PyArrayObject *a = (PyArrayObject *)x;
            if (PyArray_NDIM(a) == 1 && PyArray_DIM(a, 0) == MLPN__IN && PyArray_TYPE(a) == MLPN__TYPE &&
                (PyArray_FLAGS(a) & MLPN__READY) == MLPN__READY && PyArray_ISNOTSWAPPED(a)) {
                npy_intp dim = MLPN__OUT;
                PyObject *y = PyArray_SimpleNew(1, &dim, MLPN__TYPE);
                if (y == NULL) return NULL;
                @RELEASE_ONE_BEGIN@
                @NAME@((const mlpn__t *)PyArray_DATA(a), (mlpn__t *)PyArray_DATA((PyArrayObject *)y));
                @RELEASE_ONE_END@
                return y;
            }
        }
        return mlpn__general(x, NULL, NULL);
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "predict() takes 1 positional argument (x) but %zd were given", nargs);
        return NULL;
    }
    for (k = 0; k < nkw; ++k) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int slot = PyUnicode_CompareWithASCIIString(key, mlpn__keywords[0]) == 0 ? 0
                 : PyUnicode_CompareWithASCIIString(key, mlpn__keywords[1]) == 0 ? 1 : -1;
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError, "predict() got an unexpected keyword argument %R (it takes out= and threads=)", key);
            return NULL;
        }
        values[slot] = args[nargs + k];
    }
    return mlpn__general(args[0], values[0], values[1]);
}

@SCALAR@

/* The predictor's type: a subclass of the Python class it is given (CompiledNetwork),
   made once per library, whose instances CPython calls through vectorcall straight into
   predict(): no __call__ lookup, no argument tuple (a Python class's instance call costs
   ~50-90 ns of that dispatch; Python 3.11 does not inherit vectorcall into a subclass made
   in Python, so the type is made here).  Its instances keep the base's __dict__, so all
   the Python-level attributes and methods stay.  The entry point lives in each instance
   (tp_vectorcall_offset), set when the instance is allocated: object.__new__ allocates
   through tp_alloc whatever __new__ the Python side runs. */
static PyObject *mlpn__call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return mlpn__predict(callable, args, PyVectorcall_NARGS(nargsf), kwnames);
}

static PyObject *mlpn__alloc(PyTypeObject *type, Py_ssize_t items)
{
    PyObject *self = PyType_GenericAlloc(type, items);
    if (self != NULL && type->tp_vectorcall_offset > 0)
        *(vectorcallfunc *)(void *)((char *)self + type->tp_vectorcall_offset) = mlpn__call;
    return self;
}

static PyObject *mlpn__predictor_type(PyObject *self, PyObject *base)
{
    /* PyType_FromSpecWithBases copies tp_members into the heap type: a local array will do */
    PyMemberDef members[2] = {{"__vectorcalloffset__", T_PYSSIZET, 0, READONLY, NULL}, {NULL, 0, 0, 0, NULL}};
    PyType_Slot slots[] = {{Py_tp_call, (void *)PyVectorcall_Call}, {Py_tp_alloc, (void *)mlpn__alloc},
                           {Py_tp_members, NULL}, {0, NULL}};
    PyType_Spec spec = {"mlpcodegen.runtime.predictor.CompiledNetwork", 0, 0,
                        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL, NULL};
    PyObject *bases, *type;
    Py_ssize_t size;
    (void)self;
    if (!PyType_Check(base)) {
        PyErr_SetString(PyExc_TypeError, "predictor_type() takes the base class");
        return NULL;
    }
    size = ((PyTypeObject *)base)->tp_basicsize;
    members[0].offset = size;
    slots[2].pfunc = members;
    spec.basicsize = (int)(size + (Py_ssize_t)sizeof(vectorcallfunc));
    spec.slots = slots;
    bases = PyTuple_Pack(1, base);
    if (bases == NULL) return NULL;
    type = PyType_FromSpecWithBases(&spec, bases);
    Py_DECREF(bases);
    return type;
}

static PyMethodDef mlpn__methods[] = {
    {"predict", (PyCFunction)(void (*)(void))mlpn__predict, METH_FASTCALL | METH_KEYWORDS,
     "predict(x, *, out=None, threads=None): one sample (1-D) -> outputs, a batch (n, inputs) -> (n, outputs)"},
    @SCALAR_ENTRY@
    {"predictor_type", mlpn__predictor_type, METH_O, "predictor_type(base): the subclass of base called as predict"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef mlpn__module = {PyModuleDef_HEAD_INIT, "@MODULE@", NULL, -1, mlpn__methods,
                                          NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_@MODULE@(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    import_array();
    mlpn__cpus = online > 0 ? (int)online : 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) mlpn__cpus = CPU_COUNT(&set);
    return PyModule_Create(&mlpn__module);
}
#pragma GCC pop_options
