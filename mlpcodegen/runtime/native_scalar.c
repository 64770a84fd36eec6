static PyObject *mlpn__scalar(PyObject *self, PyObject *v)
{
    double value = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : PyFloat_AsDouble(v);
    (void)self;
    if (value == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble((double)@NAME@_scalar((mlpn__t)value));
}
