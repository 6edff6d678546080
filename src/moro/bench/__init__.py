"""Benchmarks: speed, memory and scaling (``moro bench speed``), the occlusion accuracy table
(``moro bench accuracy``) and the results page ``benchmarks/RESULTS.md``.

One concept per module::

    measure.py   machine description, timing (CUDA-synchronised), peak memory, one child process per measurement
    flops.py     FLOP counting (torch FlopCounterMode, on the meta device) and the measured matmul peak
    models.py    the networks measured: tiny (checkpoint or random), paper (random), micro (scaling smoke)
    speed.py     the speed measurements (tokenizer, masked decoding, pipeline, scaling) and their plan
    filters.py   temporal smoothing baselines: Gaussian and one-euro filters, grid search
    accuracy.py  decode variants on the synthetic benchmark, predictions, protocol scoring
    report.py    RESULTS.md tables and PNG plots from the JSON results
"""
