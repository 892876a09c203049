"""One rule turns Redis's exceptions into distopt's, for the store and for rq's queues."""

import pytest
import redis.exceptions

from distopt.errors import ConnectionFailed, StorageError
from distopt.storage.redis.errors import redis_errors, translate_redis_error


def test_unreachable_names_where_what_and_the_url():
    err = translate_redis_error(redis.exceptions.ConnectionError("refused"), "10.0.0.5:6379", "reading rq's queues",
                                "redis://:***@10.0.0.5:6379/0")
    assert isinstance(err, ConnectionFailed)
    assert str(err).startswith("cannot reach Redis at 10.0.0.5:6379 (refused) while reading rq's queues")
    assert "fix the URL redis://:***@10.0.0.5:6379/0" in str(err)


def test_refused_password_says_where_the_credentials_go():
    err = translate_redis_error(redis.exceptions.AuthenticationError("WRONGPASS"), "h:1", "running ping")
    assert isinstance(err, ConnectionFailed) and "redis://user:password@host" in str(err)


def test_other_failures_are_storage_errors_and_the_block_translates():
    with pytest.raises(StorageError, match=r"Redis at h:1 failed while running get_study: WRONGTYPE") as info:
        with redis_errors("h:1", "running get_study"):
            raise redis.exceptions.ResponseError("WRONGTYPE")
    assert not isinstance(info.value, ConnectionFailed)
    assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)
