"""The checks of each exercise: module ``exNN`` defines ``EXERCISE`` for ``solutions/NN_*.ipynb``.

See :mod:`cflib.grading` for how to add one.
"""
