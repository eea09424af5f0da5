"""Component classes that several server tests serve (pass them to conftest's make_model)."""

FAILING = """
    class Failing:
        def predict(self, X, names, meta):
            raise ValueError("the sensor column is missing")
"""

RAGGED = """
    class Ragged:
        def predict(self, X, names, meta):
            return [[1, 2], [3]]
"""
