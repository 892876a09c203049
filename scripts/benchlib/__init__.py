"""Shared benchmark code: test problems, a simulated asynchronous scheduler, optimizer
adapters (distopt, optuna, hyperopt, random) and the summary statistics.

The scripts in ``scripts/`` put this directory on ``sys.path``; nothing here is part of
the installed ``distopt`` package.
"""
