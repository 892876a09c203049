"""Stand-in for pymongo's ``bson``, which hyperopt's ``tests/test_base.py`` imports at the
top only for its SONify tests (MongoDB documents, out of scope here). Encoding is not
provided, so those tests fail rather than pass by accident."""


class BSON:
    @staticmethod
    def encode(document):
        raise NotImplementedError("bson is not installed; SONify is out of scope for distopt")
