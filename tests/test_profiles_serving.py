"""The serving keys of a profile: listen (HOST:PORT) and api_key_env."""

from __future__ import annotations

import pytest
from engine_helpers import write_profile

from rigtui.model.profile import is_loopback, parse_listen
from rigtui.profiles import check_profile


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), (":9000", ("127.0.0.1", 9000)),
    ("8081", ("127.0.0.1", 8081)), ("[::1]:8080", ("::1", 8080)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
])  # fmt: skip
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "host:port", "1.2.3.4:70000", "::1:80", "[::1]"])
def test_parse_listen_refuses(text):
    with pytest.raises(ValueError, match="listen"):
        parse_listen(text)


def test_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("rig")


def test_profile_check_of_the_serving_keys(tmp_path):
    bad = write_profile(tmp_path, "bad", 'model = "demo:8M"\nlisten = "nowhere"\n'
                        'api_key_env = "NOT A NAME"\n')  # fmt: skip
    issues = {i.key: i for i in check_profile(bad, None)}
    assert issues["listen"].line == 2 and "HOST:PORT" in issues["listen"].message
    assert issues["api_key_env"].line == 3
    open_ = write_profile(tmp_path, "open", 'model = "demo:8M"\nlisten = "0.0.0.0:8080"\n')
    (issue,) = check_profile(open_, None)
    assert issue.key == "listen" and issue.line == 2 and "api_key_env" in issue.hint
    keyed = write_profile(tmp_path, "keyed", 'model = "demo:8M"\nlisten = "0.0.0.0:8080"\n'
                          'api_key_env = "RIGTUI_API_KEY"\n')  # fmt: skip
    assert check_profile(keyed, None) == []
