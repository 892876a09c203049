"""Where the secret that signs objectives and jobs comes from: an argument, a file, or
$DISTOPT_SECRET, in that order; the one rule every process that signs or verifies uses."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..defaults import ENV_INSECURE, ENV_SECRET
from ..errors import DistoptError
from ..trial.names import refuse_placeholder

log = logging.getLogger(__name__)

NO_SECRET_HELP = (
    f"set {ENV_SECRET} to the same random string on the coordinator and on every worker "
    "(e.g. `export DISTOPT_SECRET=$(python -c 'import secrets; print(secrets.token_hex(32))')`), "
    "or pass --secret-file FILE (secret=... in Python); to ship unsigned objectives on a "
    "network you fully trust, pass --insecure (insecure=True)"
)


def env_secret() -> bytes | None:
    """The secret in $DISTOPT_SECRET, None when it is unset or empty (empty means "not set")."""
    value = os.environ.get(ENV_SECRET)
    return os.fsencode(value) if value else None


def env_insecure() -> bool:
    """Whether $DISTOPT_INSECURE asks for unsigned objectives (workers started with plain ``rq worker``)."""
    return os.environ.get(ENV_INSECURE, "").lower() in ("1", "true", "yes")


def secret_configured(secret_file: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``resolve_secret(None, secret_file)`` finds a secret (rather than needing ``insecure``)."""
    return secret_file is not None or env_secret() is not None


def resolve_secret(
    secret: str | bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    role: str = "coordinator",
) -> bytes | None:
    """The secret from ``secret``, ``secret_file`` or $DISTOPT_SECRET, in that order.

    None only when ``insecure`` is set (then a warning says what that means); without a
    secret and without ``insecure`` this raises, saying what to set.
    """
    if secret is not None:
        value = secret.encode() if isinstance(secret, str) else bytes(secret)
        origin = "the secret argument"
    elif secret_file is not None:
        try:
            value = Path(secret_file).read_bytes().strip()
        except OSError as exc:
            raise DistoptError(f"cannot read the secret file {str(secret_file)!r}: {exc.strerror or exc}") from exc
        origin = f"the secret file {str(secret_file)!r}"
    elif (from_env := env_secret()) is not None:
        value = from_env
        origin = f"${ENV_SECRET}"
    else:
        if insecure:
            what = "ships objectives unsigned" if role == "coordinator" else "accepts unsigned objectives"
            log.warning(
                "insecure mode: this %s %s; anyone who can write to this Redis can run code on the "
                "workers. Set %s on the coordinator and the workers to sign and verify objectives.",
                role, what, ENV_SECRET,
            )
            return None
        raise DistoptError(f"no shared secret for signing objectives: {NO_SECRET_HELP}")
    if not value:
        raise DistoptError(f"the secret from {origin} is empty: {NO_SECRET_HELP}")
    refuse_placeholder(value, f"the secret from {origin}",
                       "set a random one: python -c 'import secrets; print(secrets.token_hex(32))'")
    if insecure:
        log.warning("insecure mode has no effect: this %s has a secret (from %s), so it only %s signed objectives "
                    "and jobs", role, origin, "ships" if role == "coordinator" else "accepts")
    return value
