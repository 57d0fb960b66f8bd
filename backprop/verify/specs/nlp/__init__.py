"""The rows of "Deep Learning from Scratch 2", one module per module of ``backprop.nlp`` (the names mirror
``reference.nlp``). ``backprop.verify.specs`` collects them with book 1's, ordered by ``SECTION``."""
