"""The layers and models of "Deep Learning from Scratch 2" as pure JAX functions, differentiated by
``jax.vjp``; the submodules mirror ``backprop.nlp``. Import a submodule for its functions (the rows do,
lazily), so that importing this package imports no JAX."""
