"""The vocabulary every layer speaks: trial states and their transitions, the record, its JSON
codec, the outcome of one call of the objective, hyperopt's constants, name rules."""
