"""Source configs: the shipped ones build the URLs their APIs expect; bad ones are one-line errors."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from crawlers.avatar_space import PARAMS
from crawlers.source import load_source
from img2caricature.cli import main
from img2caricature.errors import UserError

SOURCES = Path(__file__).resolve().parents[1] / "img2caricature" / "configs" / "sources"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def test_local_source_asks_only_for_what_the_server_knows():
    source = load_source(SOURCES / "local.toml")
    assert source.base == "http://127.0.0.1:8089"
    for name, values in zip(source.names, source.values):
        assert set(values) <= set(PARAMS[name].values), name
    url = source.url(tuple(0 for _ in source.names))
    assert url.startswith("http://127.0.0.1:8089/avatar.png?")
    q = query(url)
    assert q["size"] == "152" and q["top"] == source.values[0][0]
    assert set(q) == set(source.names) | {"size"}


def test_url_option_replaces_the_base():
    source = load_source(SOURCES / "local.toml", "http://127.0.0.1:9999/")
    assert source.url(tuple(0 for _ in source.names)).startswith("http://127.0.0.1:9999/avatar.png?top=")


def test_bitmoji_urls_are_avatar_builder_previews():
    source = load_source(SOURCES / "bitmoji.toml")
    vector = tuple(len(v) - 1 for v in source.values)
    url = source.url(vector)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "preview.bitmoji.com", "/avatar-builder-v3/preview/head")
    q = query(url)
    assert q["gender"] in {"1", "2"} and q["style"] == "5" and q["rotation"] == "0"
    for name, values in zip(source.names, source.values):
        assert q[name] == values[-1]
    for trait in ["beard", "brow", "eye", "glasses", "hair", "hat", "mouth", "nose", "skin_tone", "hair_tone", "outfit"]:
        assert trait in q
    assert q["beard"].lstrip("-").isdigit() and q["skin_tone"].isdigit()


def test_dicebear_urls_follow_the_http_api():
    source = load_source(SOURCES / "dicebear.toml")
    vector = tuple(0 for _ in source.names)
    url = source.url(vector)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "api.dicebear.com", "/9.x/avataaars/png")
    q = query(url)
    assert q["top"] == "bigHair" and q["topProbability"] == "100"
    assert q["skinColor"] == "614335" and q["hairColor"] == "2c1b18"
    assert q["accessoriesProbability"] in {"0", "100"} and q["facialHairProbability"] in {"0", "100"}
    assert q["size"] == "152"


def test_values_are_url_encoded(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\nbase = "http://127.0.0.1:1"\ntemplate = "{base}/x?c={color}"\n'
                    '[params.color]\nvalues = ["#ff0000", "a b&c=d"]\n')
    source = load_source(path)
    assert source.url((0,)) == "http://127.0.0.1:1/x?c=%23ff0000"
    assert query(source.url((1,)))["c"] == "a b&c=d"


def test_sampling_follows_weights_and_seed(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\ntemplate = "http://127.0.0.1:1/x?a={a}&b={b}"\n'
                    '[params.a]\nvalues = ["x", "y", "z"]\nweights = [1, 3, 0]\n'
                    '[params.b]\nvalues = [1, 2]\n')
    source = load_source(path)
    assert source.space_size == 4  # z has weight 0
    draws = np.array([v for v, _ in zip(source.sample(seed=5), range(4000))])
    assert (draws[:, 0] != 2).all()
    assert 0.70 < (draws[:, 0] == 1).mean() < 0.80
    again = [v for v, _ in zip(source.sample(seed=5), range(50))]
    assert again == [tuple(v) for v in draws[:50]]


BAD_CONFIGS = {
    "unknown parameter": ('name = "t"\ntemplate = "http://127.0.0.1:1/x?a={a}&h={hair}"\n[params.a]\nvalues = [1]\n',
                          "unknown parameter '{hair}' in the URL template"),
    "unused parameter": ('name = "t"\ntemplate = "http://127.0.0.1:1/x"\n[params.a]\nvalues = [1]\n',
                         "parameter 'a' is not used in the URL template"),
    "no scheme": ('name = "t"\nbase = "127.0.0.1:8089"\ntemplate = "{base}/x?a={a}"\n[params.a]\nvalues = [1]\n',
                  "malformed URL"),
    "bad port": ('name = "t"\ntemplate = "http://127.0.0.1:99999/x?a={a}"\n[params.a]\nvalues = [1]\n',
                 "malformed URL"),
    "lone brace": ('name = "t"\ntemplate = "http://h/x?a={a"\n[params.a]\nvalues = [1]\n', "malformed URL template"),
    "space in URL": ('name = "t"\ntemplate = "http://h/x y?a={a}"\n[params.a]\nvalues = [1]\n', "malformed URL"),
    "unknown key": ('name = "t"\ntemplte = "x"\ntemplate = "http://h/?a={a}"\n[params.a]\nvalues = [1]\n',
                    "unknown key 'templte'"),
    "weights": ('name = "t"\ntemplate = "http://h/?a={a}"\n[params.a]\nvalues = [1, 2]\nweights = [1]\n',
                "2 values but 1 weights"),
    "no params": ('name = "t"\ntemplate = "http://h/"\n', "nothing to sample"),
    "not toml": ('name = "t\n', "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_source_config_is_a_one_line_error(tmp_path, capsys, case):
    text, message = BAD_CONFIGS[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = main(["crawl", "--source", str(path), "--count", "1", "--out", str(tmp_path / "e.h5")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "e.h5").exists()


def test_missing_source_and_bad_url_option(tmp_path, capsys):
    assert main(["crawl", "--source", str(tmp_path / "none.toml"), "--count", "1"]) == 2
    assert "config file not found" in capsys.readouterr().err
    code = main(["crawl", "--source", str(SOURCES / "local.toml"), "--url", "localhost:8089", "--count", "1",
                 "--out", str(tmp_path / "e.h5")])
    err = capsys.readouterr().err
    assert code == 2 and "--url: malformed URL" in err and len(err.strip().splitlines()) == 1


def test_count_larger_than_the_space_is_refused(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\ntemplate = "http://127.0.0.1:1/x?a={a}"\n[params.a]\nvalues = [1, 2]\n')
    assert main(["crawl", "--source", str(path), "--count", "3", "--out", str(tmp_path / "e.h5")]) == 2
    assert "more than the 2 distinct parameter vectors" in capsys.readouterr().err
    with pytest.raises(UserError):
        load_source(tmp_path / "missing.toml")
