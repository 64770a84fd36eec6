static void @NAME@_batch(const mlpn__t *x, mlpn__t *y, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) @NAME@(x + i * (size_t)MLPN__IN, y + i * (size_t)MLPN__OUT);
}
