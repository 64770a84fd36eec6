/* Wide networks (the rows layout): a batch of more rows than a stack block goes through
   NAME_batch_ws with a workspace allocated here, once per call and thread: blocks of many
   rows read each layer's weights once a block (the same results, bit for bit, as
   NAME_batch).  Without the memory, NAME_batch (its bounded stack) does the work. */
static void mlpn__batch(const mlpn__t *x, mlpn__t *y, size_t n)
{
    void *work = n > (size_t)@LANES@ ? malloc(@NAME@_BATCH_WORK) : NULL;
    if (work == NULL) { @NAME@_batch(x, y, n); return; }
    @NAME@_batch_ws(x, y, n, work);
    free(work);
}
