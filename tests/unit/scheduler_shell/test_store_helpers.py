"""Pure helpers of the state store: names, codecs, ACL credentials."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from scheduler.shell.errors import StoreError
from scheduler.shell.store import JsonCodec, digest_acl, validate_key


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "x\0y"])
def test_invalid_znode_names_are_refused_with_the_name(bad):
    with pytest.raises(StoreError) as err:
        validate_key(bad, "task")
    assert repr(bad) in str(err.value) and "task" in str(err.value)


@given(st.text(min_size=1).filter(lambda s: "/" not in s and "\0" not in s and s not in (".", "..")))
def test_other_names_pass_unchanged(name):
    assert validate_key(name, "task") == name


def test_json_codec_requires_objects_for_records():
    codec = JsonCodec()
    assert codec.decode("properties", 3) == 3
    assert codec.decode("tasks", {"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match="JSON object"):
        codec.decode("tasks", [1])


def test_digest_acl():
    assert digest_acl(None) is None
    (acl,) = digest_acl("kmf:pw")
    assert acl.id.scheme == "digest" and acl.id.id.startswith("kmf:")
    for bad in ("kmf", ":pw"):
        with pytest.raises(StoreError, match="user:password"):
            digest_acl(bad)
