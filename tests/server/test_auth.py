"""TokenStore: predict, review and admin tokens, from the environment or a file of hashes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from modelpilot.errors import AuthError, ConfigError, ConflictError, ModelpilotError, NotFoundError
from modelpilot.server import Principal, TokenStore

ENVIRON = {"MODELPILOT_PREDICT_TOKEN": "p-secret", "MODELPILOT_ADMIN_TOKEN": "a-secret"}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / ".modelpilot" / "tokens.json"


def test_environment_tokens_have_their_roles() -> None:
    store = TokenStore(path=None, environ=ENVIRON)
    assert store.authenticate("Bearer p-secret", role="predict") == Principal(
        "env:predict", "predict"
    )
    assert store.authenticate("Bearer a-secret", role="admin") == Principal("env:admin", "admin")
    assert store.authenticate("Bearer a-secret", role="predict").name == "env:admin"
    assert store.configured == {"predict": 1, "review": 0, "admin": 1}


def test_a_review_token_reads_and_decides_reviews_and_nothing_else() -> None:
    store = TokenStore(path=None, environ={**ENVIRON, "MODELPILOT_REVIEW_TOKEN": "r-secret"})
    assert store.authenticate("Bearer r-secret", role="review") == Principal("env:review", "review")
    assert store.authenticate("Bearer a-secret", role="review").name == "env:admin"
    for role, article in (("predict", "a"), ("admin", "an")):
        with pytest.raises(
            AuthError, match=f"has role 'review'; this endpoint needs {article} {role}"
        ):
            store.authenticate("Bearer r-secret", role=role)  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="has role 'predict'; this endpoint needs a review"):
        store.authenticate("Bearer p-secret", role="review")
    assert store.configured == {"predict": 1, "review": 1, "admin": 1}


def test_a_predict_token_on_an_admin_endpoint_is_403() -> None:
    store = TokenStore(path=None, environ=ENVIRON)
    with pytest.raises(AuthError, match="token 'env:predict' has role 'predict'") as caught:
        store.authenticate("Bearer p-secret", role="admin")
    assert (caught.value.http_status, caught.value.kind) == (403, "forbidden")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "this endpoint needs a predict token: send the header 'Authorization: Bearer"),
        ("", "this endpoint needs a predict token"),
        ("Bearer nope", "the token is not valid; check it or create one with `modelpilot token"),
        ("Basic p-secret", "the Authorization header must be 'Bearer TOKEN'"),
        ("Bearer", "the Authorization header must be 'Bearer TOKEN'"),
        ("p-secret", "the Authorization header must be 'Bearer TOKEN'"),
    ],
)
def test_missing_or_bad_credentials_are_401(header: str | None, message: str) -> None:
    store = TokenStore(path=None, environ=ENVIRON)
    with pytest.raises(AuthError, match=message) as caught:
        store.authenticate(header, role="predict")
    assert (caught.value.http_status, caught.value.kind) == (401, "unauthorized")


def test_the_scheme_is_case_insensitive() -> None:
    store = TokenStore(path=None, environ=ENVIRON)
    assert store.authenticate("bearer p-secret", role="predict").role == "predict"


def test_without_any_token_the_401_says_how_to_create_one() -> None:
    store = TokenStore(path=None, environ={})
    with pytest.raises(
        AuthError,
        match="no admin token is configured: create one with "
        "`modelpilot token create NAME --role admin` or set "
        "MODELPILOT_ADMIN_TOKEN",
    ):
        store.authenticate(None, role="admin")


def test_open_predict_opens_predictions_but_never_admin() -> None:
    store = TokenStore(path=None, environ=ENVIRON, open_predict=True)
    assert store.authenticate(None, role="predict") == Principal("anonymous", "predict")
    with pytest.raises(AuthError, match="needs an admin token") as caught:
        store.authenticate(None, role="admin")
    assert caught.value.http_status == 401
    with pytest.raises(AuthError, match="has role 'predict'"):
        store.authenticate("Bearer p-secret", role="admin")
    with pytest.raises(AuthError, match="the token is not valid"):  # a sent token is checked
        store.authenticate("Bearer wrong", role="predict")


def test_created_tokens_work_and_only_their_hash_is_stored(tokens_file: Path) -> None:
    store = TokenStore(path=tokens_file, environ={})
    alice = store.create("alice", "predict", clock=lambda: 1_700_000_000.0)
    ops = store.create("ops", "admin")
    assert alice.startswith("mp_") and alice != ops
    text = tokens_file.read_text(encoding="utf-8")
    assert alice not in text and ops not in text
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    reloaded = TokenStore(path=tokens_file, environ={})  # as a restarted server reads it
    assert reloaded.authenticate(f"Bearer {alice}", role="predict") == Principal("alice", "predict")
    assert reloaded.authenticate(f"Bearer {ops}", role="admin") == Principal("ops", "admin")
    assert reloaded.list() == [
        {"name": "alice", "role": "predict", "created_at": 1_700_000_000.0},
        {"name": "ops", "role": "admin", "created_at": json.loads(text)["tokens"][1]["created_at"]},
    ]


def test_file_and_environment_tokens_are_both_accepted(tokens_file: Path) -> None:
    token = TokenStore(path=tokens_file, environ={}).create("alice", "predict")
    store = TokenStore(path=tokens_file, environ=ENVIRON)
    assert store.configured == {"predict": 2, "review": 0, "admin": 1}
    assert store.authenticate(f"Bearer {token}", role="predict").name == "alice"
    assert store.authenticate("Bearer p-secret", role="predict").name == "env:predict"


def test_a_name_is_used_once(tokens_file: Path) -> None:
    store = TokenStore(path=tokens_file, environ={})
    store.create("alice", "predict")
    with pytest.raises(ConflictError, match="a token named 'alice' exists; revoke it first"):
        store.create("alice", "admin")


def test_an_unknown_role_is_refused(tokens_file: Path) -> None:
    with pytest.raises(
        ModelpilotError, match="role must be one of predict, review, admin, got 'root'"
    ):
        TokenStore(path=tokens_file, environ={}).create("alice", "root")  # type: ignore[arg-type]


def test_a_revoked_token_no_longer_authenticates(tokens_file: Path) -> None:
    store = TokenStore(path=tokens_file, environ={})
    token = store.create("alice", "predict")
    store.create("bob", "predict")
    store.revoke("alice")
    reloaded = TokenStore(path=tokens_file, environ={})
    with pytest.raises(AuthError, match="the token is not valid"):
        reloaded.authenticate(f"Bearer {token}", role="predict")
    assert [entry["name"] for entry in reloaded.list()] == ["bob"]
    with pytest.raises(NotFoundError, match="token 'alice' was not found; `modelpilot token"):
        store.revoke("alice")


def test_a_corrupt_token_file_is_a_config_error(tokens_file: Path) -> None:
    tokens_file.parent.mkdir(parents=True)
    tokens_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a valid token file .* remove it and create"):
        TokenStore(path=tokens_file, environ={})


def test_without_a_token_file_tokens_cannot_be_created() -> None:
    with pytest.raises(ModelpilotError, match=r"no token file is configured \(serving.tokens"):
        TokenStore(path=None, environ={}).create("alice", "predict")
