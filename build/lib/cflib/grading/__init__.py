"""Graded exercises: in-notebook feedback, a grader that cannot be fooled, reports.

In a notebook, after an answer::

    from cflib.grading import check
    check("01", "log_abs_det")     # public checks of that answer; check("01") checks them all

From a shell: ``python -m cflib.grade PATH... [--json F] [--csv F] [--markdown DIR] [--timeout S]
[--jobs N] [--min-score FRACTION] [--seed N]``; through pytest:
``pytest -p cflib.grading.pytest_plugin --submission NB`` (see :mod:`.pytest_plugin`);
``python -m cflib.grading.generate [--force] [--check] [NAMES...]`` writes ``exercises/``.

How grading works (and why a notebook cannot raise its own grade): the grader runs a copy of the
notebook in its own kernel, then each check, in the grader's process, draws inputs from a seed chosen
at grading time and sends *probes* into the kernel: code that calls the student's functions by name
on those inputs and returns plain data (numbers, lists, ``srepr`` strings) printed between two copies
of a fresh random token. The verdict compares that data with the reference computed in the grader.
Redefining ``check``, printing a score, or hard-coding the examples the notebook shows changes none
of this. Modules: :mod:`.checks` (checks, results, registry), :mod:`.probe` (the in-kernel harness),
:mod:`.wire` (data across the boundary), :mod:`.kernel`, :mod:`.runner`, :mod:`.report`,
:mod:`.notebook` (``check``), :mod:`.markdown` (written answers), :mod:`.generate`.

Adding exercise NN (no change to the machinery)
-----------------------------------------------
1. Write ``solutions/NN_name.ipynb``: answers are *functions* (or variables) with fixed names whose
   bodies sit between ``# BEGIN SOLUTION [hint]`` and ``# END SOLUTION`` lines (the exercise gets
   ``raise NotImplementedError("hint")`` instead, so write the hint after the marker). Cells that
   call an answer must only fail with that ``NotImplementedError`` in the exercise, and must not
   leave variables that later cells need. A written answer sits under a Markdown heading
   ``### Answer: name``, the model answer between ``<!-- BEGIN SOLUTION -->`` and
   ``<!-- END SOLUTION -->``. After each answer put a check cell: ``check("NN", "name")``.
   Fix seeds; keep it under 60 s on 2 CPUs; prefer assert cells to printed floats (nbval).
2. Write ``checks/exNN.py`` (public checks) and ``checks/exNN_hidden.py`` (hidden ones) defining ``EXERCISE = Exercise("NN", title,
   "NN_name")`` and its checks, in the order they should be reported::

       from cflib.grading.wire import decode_array, encode_tensor   # at the top of exNN.py

       def probe_sum(answers, x):                     # runs in the student's kernel
           import torch                               # imports inside: only the source travels
           return encode_tensor(answers["my_sum"](torch.tensor(x)))

       @EXERCISE.check(points=2, answers=["my_sum"], hidden=False)
       def sums_rows(student, rng):                   # runs in the grader (or the notebook)
           x = rng.normal(size=(4, 3))                # inputs drawn at grading time
           got, _ = decode_array(student.call(probe_sum, x.tolist()), "my_sum(x)")
           if got.shape != (4,):
               return failed(f"expected shape (4,), found {got.shape}")
           return passed("sums each row") if np.allclose(got, x.sum(1)) else failed("...")

   A probe is a module-level function named ``probe_*``, ``probe(answers, *json_args) ->
   json_data``; ``answers[name]`` is the student's object (callables are wrapped so that what they
   raise is reported with the call). Only its source travels, preceded by :mod:`.wire`'s: it may use
   builtins and wire's names (``encode_tensor``, ``encode_matrix``, ``encode_expr``, ``describe``,
   ``decode_matrix``, ``make_real``), and imports anything else inside its body. Decode its data in
   the check with the matching ``decode_*`` (they raise ``DecodeError`` with a message for the
   student). A check returns ``passed(msg)``, ``failed(msg)`` or
   ``partial(fraction, msg)``; a message says what was expected and what was found, without the
   solution. A missing name, a ``NotImplementedError`` or any other exception in the student's
   code, a timeout or a dead kernel become a failed check with a clear message automatically.
   Written answers: ``student.written_answer("name")`` (None when the heading is missing; use
   ``markdown.answer_text`` to drop the prompt); such checks must be ``hidden=True`` (the notebook
   cannot read its own Markdown).
3. Run ``python -m cflib.grading.generate NN`` and commit both notebooks; the tests in
   ``tests/test_grading.py`` that loop over exercises (drift, solution full marks, exercise zero)
   pick the new one up.
"""

from cflib.grading.checks import (
    CheckResult,
    Exercise,
    Outcome,
    Student,
    exercise_numbers,
    failed,
    load_exercise,
    partial,
    passed,
)
from cflib.grading.notebook import Feedback, check

__all__ = [
    "CheckResult",
    "Exercise",
    "Feedback",
    "Outcome",
    "Student",
    "check",
    "exercise_numbers",
    "failed",
    "load_exercise",
    "partial",
    "passed",
]
