"""``encrypted: true`` columns on SQLite and PostgreSQL: what the database holds, what the ORM reads, key errors."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import insert, select, text

import timber_core
from timber_core.encryption import FieldKeys, blind_index_of
from timber_core.errors import ConfigurationError, EncryptionError, ValidationError

from .conftest import NEW_KEY, OLD_KEY

Start = Callable[..., Any]


def _add(kernel: Any, **values: Any) -> str:
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        card = Card(**values)
        s.add(card)
        s.flush()
        return str(card.id)


def _raw(kernel: Any) -> list[Any]:
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return conn.execute(text("SELECT label, email, notes, email_bidx FROM vault_cards ORDER BY label")).all()


def test_the_raw_table_holds_no_plaintext(start: Start) -> None:
    kernel = start()
    _add(kernel, label="ann", email="ann@example.com", notes="owes 40 to bob")
    (row,) = _raw(kernel)
    sealed = [bytes.fromhex(row.email), bytes.fromhex(row.notes)]
    assert row.label == "ann"
    assert [b"ann" in t or b"owes" in t or "ann" in row.email or "owes" in row.notes for t in sealed] == [False, False]
    assert [t[:1] for t in sealed] == [b"\x01", b"\x01"]  # the token's version byte
    assert FieldKeys([OLD_KEY], None, "test").decrypt(row.notes) == "owes 40 to bob"
    assert len(row.email_bidx) == 64 and "ann" not in row.email_bidx


def test_an_encrypted_value_reads_back_as_written(start: Start) -> None:
    kernel = start()
    card_id = _add(kernel, label="ann", email="ann@example.com", notes="owes 40 to bob")
    timber_core.shutdown()
    kernel = start()
    with kernel.db.session_scope() as s:
        card = s.get(kernel.get_model("Card"), card_id)
        assert (card.email, card.notes) == ("ann@example.com", "owes 40 to bob")


def test_a_value_no_configured_key_decrypts_is_an_error_naming_the_column(start: Start) -> None:
    kernel = start()
    _add(kernel, label="ann", email=None, notes="owes 40 to bob")
    timber_core.shutdown()
    kernel = start(keys=NEW_KEY)
    with kernel.db.session_scope() as s, pytest.raises(EncryptionError) as info:
        s.scalars(select(kernel.get_model("Card"))).all()
    assert str(info.value) == (
        "cannot decrypt Card.notes (app 'vault'): no key in TIMBER_ENCRYPTION_KEYS decrypts the stored value (it "
        "was encrypted with a key that is no longer listed, or written without Timber): put that key back after "
        "the newest one, then run `timber keys rotate`")


def test_a_value_written_without_timber_is_an_error_naming_the_column(start: Start) -> None:
    kernel = start()
    with timber_core.platform_context(), kernel.db.connection() as conn:
        conn.execute(text("INSERT INTO vault_cards (id, label, notes, created_at, updated_at) "
                          "VALUES ('raw', 'raw', 'plain text', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    with kernel.db.session_scope() as s, pytest.raises(EncryptionError) as info:
        s.get(kernel.get_model("Card"), "raw")
    assert str(info.value) == (
        "cannot decrypt Card.notes (app 'vault'): no key in TIMBER_ENCRYPTION_KEYS decrypts the stored value (it "
        "was encrypted with a key that is no longer listed, or written without Timber): put that key back after "
        "the newest one, then run `timber keys rotate`")


def test_an_older_key_still_decrypts_after_a_new_one_is_put_first(start: Start) -> None:
    kernel = start()
    card_id = _add(kernel, label="ann", email="ann@example.com", notes="owes 40 to bob")
    timber_core.shutdown()
    kernel = start(keys=f"{NEW_KEY},{OLD_KEY}")
    with kernel.db.session_scope() as s:
        assert s.get(kernel.get_model("Card"), card_id).notes == "owes 40 to bob"


def test_a_value_longer_than_its_string_length_is_refused(start: Start) -> None:
    kernel = start()
    with pytest.raises(ValidationError) as info:
        _add(kernel, label="ann", email="a" * 250 + "@x.io")
    assert str(info.value) == "Card.email (app 'vault'): at most 254 characters; got 255"


def test_a_value_that_is_not_text_is_refused(start: Start) -> None:
    kernel = start()
    with pytest.raises(ValidationError) as info:
        _add(kernel, label="ann", notes=42)
    assert str(info.value) == "Card.notes (app 'vault'): an encrypted field holds text; got int"


# -- blind index ---------------------------------------------------------------------------------


def test_blind_index_equality_finds_the_row(start: Start) -> None:
    kernel = start()
    _add(kernel, label="ann", email="ann@example.com")
    _add(kernel, label="bob", email="bob@example.com")
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        assert s.scalars(select(Card.label).where(Card.email == "bob@example.com")).all() == ["bob"]


def test_blind_index_in_and_not_equal_find_the_rows(start: Start) -> None:
    kernel = start()
    for name in ("ann", "bob", "cyd"):
        _add(kernel, label=name, email=f"{name}@example.com")
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        found_in = s.scalars(select(Card.label).where(Card.email.in_(["ann@example.com", "cyd@example.com"]))
                             .order_by(Card.label)).all()
        found_ne = s.scalars(select(Card.label).where(Card.email != "ann@example.com").order_by(Card.label)).all()
    assert (found_in, found_ne) == (["ann", "cyd"], ["bob", "cyd"])


def test_blind_index_follows_an_update(start: Start) -> None:
    kernel = start()
    card_id = _add(kernel, label="ann", email="ann@example.com")
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        s.get(Card, card_id).email = "ann@elsewhere.org"
    with kernel.db.session_scope() as s:
        old = s.scalars(select(Card.label).where(Card.email == "ann@example.com")).all()
        new = s.scalars(select(Card.label).where(Card.email == "ann@elsewhere.org")).all()
    assert (old, new) == ([], ["ann"])


def test_a_unique_blind_index_refuses_a_duplicate_value(start: Start) -> None:
    kernel = start()
    _add(kernel, label="ann", email="ann@example.com")
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        _add(kernel, label="ann2", email="ann@example.com")


def test_blind_index_of_fills_the_hash_for_a_core_insert(start: Start) -> None:
    kernel = start()
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        s.execute(insert(Card).values(id="c1", label="core", email="core@example.com",
                                      email_bidx=blind_index_of(Card, "email", "core@example.com")))
    with kernel.db.session_scope() as s:
        assert s.scalars(select(Card.label).where(Card.email == "core@example.com")).all() == ["core"]


def test_blind_index_of_a_column_without_one_is_refused(start: Start) -> None:
    kernel = start()
    with pytest.raises(ConfigurationError) as info:
        blind_index_of(kernel.get_model("Card"), "notes", "x")
    assert str(info.value) == "Card.notes has no blind index: declare encrypted: true and blind_index: true on it"


def test_filtering_an_encrypted_column_without_blind_index_is_refused(start: Start) -> None:
    kernel = start()
    Card = kernel.get_model("Card")
    with pytest.raises(EncryptionError) as info:
        select(Card).where(Card.notes == "owes 40 to bob")
    assert str(info.value) == (
        "Card.notes (app 'vault') is encrypted: the database holds tokens, so it cannot be filtered or sorted with "
        "eq; declare blind_index: true on it for ==, !=, in_ and not_in")


def test_ordering_comparisons_on_a_blind_indexed_column_are_refused(start: Start) -> None:
    kernel = start()
    Card = kernel.get_model("Card")
    with pytest.raises(EncryptionError) as info:
        select(Card).where(Card.email > "m")
    assert str(info.value) == (
        "Card.email (app 'vault') is encrypted: the database holds tokens, so it cannot be filtered or sorted with "
        "gt; only ==, !=, in_ and not_in work, through its blind index")


def test_is_null_works_on_an_encrypted_column(start: Start) -> None:
    kernel = start()
    _add(kernel, label="ann", notes=None)
    _add(kernel, label="bob", notes="x")
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        assert s.scalars(select(Card.label).where(Card.notes.is_(None))).all() == ["ann"]


# -- keys from configuration -----------------------------------------------------------------------


def test_encrypted_columns_with_encryption_off_refuse_to_start(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_ENCRYPTION", "false")
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == (
        "the models declare encrypted columns (Card.email (app 'vault'), Card.notes (app 'vault'), Memo.body "
        "(app 'vault')) but "
        "ENABLE_ENCRYPTION is off: set ENABLE_ENCRYPTION=true and the keys (docs/services.md, \"Field encryption\")")


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
def test_postgresql_without_keys_refuses_to_start(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMBER_ENCRYPTION_KEYS")
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == (
        "TIMBER_ENCRYPTION_KEYS is not set: the encrypted columns Card.email (app 'vault'), Card.notes (app 'vault'), "
        "Memo.body (app 'vault') need a key. On PostgreSQL every process of every app must use the same keys: set TIMBER_ENCRYPTION_KEYS in "
        "each app's environment (see docs/services.md, \"Field encryption\")")


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
def test_postgresql_without_a_blind_index_key_refuses_to_start(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMBER_BLIND_INDEX_KEY")
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == (
        "TIMBER_BLIND_INDEX_KEY is not set: blind_index: true columns need a secret to hash with. On PostgreSQL "
        "every process of every app must use the same keys: set TIMBER_BLIND_INDEX_KEY in each app's environment "
        "(see docs/services.md, \"Field encryption\")")


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_sqlite_without_keys_generates_0600_key_files_in_timber_home(start: Start,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMBER_ENCRYPTION_KEYS")
    monkeypatch.delenv("TIMBER_BLIND_INDEX_KEY")
    kernel = start()
    card_id = _add(kernel, label="ann", email="ann@example.com", notes="n")
    home = Path(os.environ["TIMBER_HOME"])
    modes = {name: stat.S_IMODE((home / name).stat().st_mode) for name in ("encryption_keys", "blind_index_key")}
    timber_core.shutdown()
    kernel = start()  # the same files: the row is still readable and findable
    with kernel.db.session_scope() as s:
        Card = kernel.get_model("Card")
        assert s.scalars(select(Card.id).where(Card.email == "ann@example.com")).one() == card_id
    assert modes == {"encryption_keys": 0o600, "blind_index_key": 0o600}


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_keys_are_read_from_the_key_file(start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# newest first\n{NEW_KEY}\n{OLD_KEY}\n")
    kernel = start()
    card_id = _add(kernel, label="ann", notes="under the old key")
    timber_core.shutdown()
    monkeypatch.delenv("TIMBER_ENCRYPTION_KEYS")
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEY_FILE", str(key_file))
    kernel = start()
    with kernel.db.session_scope() as s:
        assert s.get(kernel.get_model("Card"), card_id).notes == "under the old key"
    assert kernel.field_keys.source == f"TIMBER_ENCRYPTION_KEY_FILE ({key_file})"


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_key_file_that_cannot_be_read_is_a_configuration_error(start: Start, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.delenv("TIMBER_ENCRYPTION_KEYS")
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEY_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == f"TIMBER_ENCRYPTION_KEY_FILE={str(tmp_path / 'missing.txt')!r} cannot be read: " \
                              f"No such file or directory"


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_malformed_key_is_a_configuration_error_that_does_not_repeat_it(start: Start,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEYS", f"{NEW_KEY},not-a-key")
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == (
        "environment variable TIMBER_ENCRYPTION_KEYS is malformed: key number 2 is not an encryption key (url-safe "
        "base64 of 32 bytes); make one with `timber keys generate`")


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_short_blind_index_key_is_a_configuration_error(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_BLIND_INDEX_KEY", "short")
    with pytest.raises(ConfigurationError) as info:
        start()
    assert str(info.value) == ("TIMBER_BLIND_INDEX_KEY is shorter than 32 characters; make one with "
                               "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
