"""The class grader's parts (``python -m exercises.grade`` puts them together).

* :mod:`~exercises.grading.scan` — read a notebook without running it: its lesson, what it tried;
* :mod:`~exercises.grading.watch` — a time and memory limit over a whole process tree;
* :mod:`~exercises.grading.execute` — run one notebook in a fresh kernel, take its functions out, grade them;
* :mod:`~exercises.grading.remote` — the learner's functions in a process of their own, called by the check;
* :mod:`~exercises.grading.codec` — results carried back as allow-listed JSON, never as pickles.
"""
