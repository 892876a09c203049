"""hyperopt's API over distopt: ``Trials`` documents, ``Domain``, hyperopt-signature algos."""
