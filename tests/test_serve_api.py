"""The HTTP API in process (FastAPI's test client), on tiny models of the demo corpus: each field,
each error, and the metrics."""

import json
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient
from tiny_checkpoints import train_tiny

from nmt.search import SearchOptions
from nmt.serve.app import create_app
from nmt.serve.settings import Batching, Limits, Settings
from nmt.translator import Translator

LINES = ["forty-two", "seven thousand, one hundred and six", "", "nine", "three hundred and twelve"]


@pytest.fixture(scope="module")
def en_fr(tmp_path_factory):
    return Translator.from_checkpoint(train_tiny(tmp_path_factory.mktemp("en-fr")))


@pytest.fixture(scope="module")
def en_en(tmp_path_factory):
    return Translator.from_checkpoint(train_tiny(tmp_path_factory.mktemp("en-en"), trg="en", steps=60))


@pytest.fixture(scope="module")
def client(en_fr, en_en):
    with TestClient(create_app({("en", "fr"): en_fr, ("en", "en"): en_en})) as client:
        yield client


def ask(client, **body):
    return client.post("/translate", json={"source": "en", "target": "fr", **body})


def test_one_text_gives_one_translation_as_translate_py_would(client, en_fr):
    response = ask(client, q="nine")
    assert response.status_code == 200
    assert response.json() == {"translatedText": en_fr.translate(["nine"])[0]}


def test_a_list_of_texts_gives_a_list_in_the_same_order(client, en_fr):
    response = ask(client, q=LINES)
    assert response.json() == {"translatedText": en_fr.translate(LINES)}
    assert response.json()["translatedText"][2] == ""
    assert ask(client, q=[]).json() == {"translatedText": []}


def test_alternatives_are_the_beams_next_best_with_every_score(client, en_fr):
    [expected] = en_fr.translate_n_best(["forty-two"], n_best=3)
    answer = ask(client, q="forty-two", alternatives=2).json()
    assert answer["translatedText"] == expected.hypotheses[0]
    assert answer["alternatives"] == expected.hypotheses[1:]
    assert answer["scores"] == pytest.approx(expected.scores, abs=1e-4)
    assert answer["scores"] == sorted(answer["scores"], reverse=True)
    listed = ask(client, q=["nine", "forty-two"], alternatives=2).json()
    assert listed["alternatives"][1] == expected.hypotheses[1:]


def test_beam_1_is_greedy_search(client, en_fr):
    assert ask(client, q=LINES, beam=1).json()["translatedText"] == en_fr.translate(LINES, beam_size=1)


def test_attention_gives_pieces_and_one_row_of_weights_per_output_piece(client, en_fr):
    answer = ask(client, q=["seven thousand, one hundred and six", ""], attention=True).json()
    first, empty = answer["attention"]
    assert empty is None
    assert first["source"] == en_fr.source_tokens("seven thousand, one hundred and six")
    assert len(first["weights"]) == len(first["output"])
    for row in first["weights"]:
        assert len(row) == len(first["source"]) and sum(row) == pytest.approx(1.0, abs=1e-2)


def test_an_autoencoder_serves_reconstruction(client, en_en):
    response = client.post("/translate", json={"q": "forty-two", "source": "en", "target": "en"})
    assert response.json() == {"translatedText": en_en.translate(["forty-two"])[0]}


def test_languages_and_models_list_the_pairs_served(client):
    assert client.get("/languages").json() == [{"code": "en", "name": "en", "targets": ["en", "fr"]}]
    models = {(m["source"], m["target"]): m for m in client.get("/models").json()}
    assert models[("en", "en")]["autoencoder"] and not models[("en", "fr")]["autoencoder"]
    assert models[("en", "fr")]["attention"] and models[("en", "fr")]["arch"] == "rnn"
    assert client.get("/health").json()["status"] == "ready"


def test_libretranslates_form_fields_and_auto_source_work(client, en_fr):
    response = client.post("/translate", data={"q": "nine", "source": "auto", "target": "fr", "api_key": ""})
    assert response.status_code == 200 and response.json() == {"translatedText": en_fr.translate(["nine"])[0]}


def test_any_code_of_the_served_languages_asks_for_the_pair(client, en_fr):
    for source, target in (("eng", "fra"), ("en", "fra"), ("auto", "fra")):
        response = client.post("/translate", json={"q": "nine", "source": source, "target": target})
        assert response.status_code == 200 and response.json() == {"translatedText": en_fr.translate(["nine"])[0]}
    response = client.post("/translate", json={"q": "nine", "source": "deu", "target": "fr"})
    assert response.status_code == 400 and "no model translates deu->fr" in response.json()["error"]


def test_json_without_its_content_type_is_read_as_json(client, en_fr):
    body = json.dumps({"q": "nine", "source": "en", "target": "fr"})
    response = client.post("/translate", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.json() == {"translatedText": en_fr.translate(["nine"])[0]}


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'{"q": "nine", "source": "en"', 400, "the request body is not JSON: Expecting ',' delimiter (line 1"),
        (b'{"q": "caf\xe9", "source": "en", "target": "fr"}', 400, "not UTF-8 (byte 0xe9 at position 11)"),
        (b'["nine"]', 422, "the request must be a JSON object with q, source and target"),
        (b'{"q": 42, "source": "en", "target": "fr"}', 422, "q: must be a string or a list of strings"),
        (b'{"q": ["a", 7], "source": "en", "target": "fr"}', 422, "q: must be a string or a list of strings"),
        (b'{"q": "nine", "source": "en"}', 422, "target: Field required"),
        (b'{"q": "nine", "source": "en", "target": "de"}', 400, "no model translates en->de; this server translates"),
        (b'{"q": "nine", "source": "en", "target": "fr", "beam": 99}', 422, "beam: Input should be less than"),
        (b'{"q": "nine", "source": "en", "target": "fr", "beam": 0}', 422, "beam: Input should be greater than"),
        (
            b'{"q": "nine", "source": "en", "target": "fr", "beam": 2, "alternatives": 3}',
            422,
            "n-best must be between 1 and the beam size (2), not 4",
        ),
        (b'{"q": "nine", "source": "en", "target": "fr", "format": "html"}', 422, "format: Input should be 'text'"),
        (b'{"q": "nine", "source": "en", "target": "fr", "attention": "maybe"}', 422, "attention: Input should be"),
    ],
    ids=[
        "bad JSON",
        "not UTF-8",
        "not an object",
        "q a number",
        "q a list with a number",
        "no target",
        "unknown pair",
        "beam too wide",
        "beam 0",
        "more alternatives than the beam",
        "html",
        "attention not a boolean",
    ],
)
def test_bad_input_is_a_4xx_json_error_naming_the_problem(client, body, status, message):
    response = client.post("/translate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_too_much_input_is_413_naming_the_limit(en_fr):
    limits = Limits(max_chars=20, max_sentences=3, max_body_bytes=200)
    with TestClient(create_app({("en", "fr"): en_fr}, Settings(limits=limits))) as client:
        for body, message in [
            ({"q": ["nine"] * 4}, "4 texts in one request; the limit is 3 (--max-sentences)"),
            ({"q": "seven thousand, one hundred"}, "27 characters in one request; the limit is 20 (--max-chars)"),
            ({"q": "nine", "padding": "x" * 300}, "the limit is 200 (--max-body-bytes)"),
        ]:
            response = ask(client, **body)
            assert response.status_code == 413 and message in response.json()["error"]
        assert ask(client, q="nine").status_code == 200  # and the service goes on


def test_an_unknown_route_or_method_is_a_json_error(client):
    assert client.get("/nowhere").status_code == 404 and client.get("/nowhere").json() == {"error": "not found"}
    assert client.get("/translate").status_code == 405 and "error" in client.get("/translate").json()


def test_a_full_queue_is_503_with_retry_after_and_a_slow_answer_504(en_fr):
    gate = threading.Event()
    settings = Settings(batching=Batching(max_queue=2, max_wait_ms=0), limits=Limits(timeout=0.5))
    with TestClient(create_app({("en", "fr"): _Held(en_fr, gate)}, settings)) as client:
        held = threading.Thread(target=ask, args=(client,), kwargs={"q": "nine"})
        held.start()  # its sentence is searched, and the search waits for the gate
        time.sleep(0.2)
        full = ask(client, q=["one", "two", "three"])
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "the queue holds 2" in full.json()["error"]
        slow = ask(client, q="forty-two")
        assert slow.status_code == 504 and "no translation within 0.5 s" in slow.json()["error"]
        gate.set()
        held.join(timeout=30)
        assert ask(client, q="nine").json() == {"translatedText": en_fr.translate(["nine"])[0]}


def test_metrics_count_requests_sentences_and_batches(en_fr):
    with TestClient(create_app({("en", "fr"): en_fr}, Settings(search=SearchOptions(beam_size=1)))) as client:
        ask(client, q=LINES)
        ask(client, q="nine")
        ask(client, q="nine", target="de")
        text = client.get("/metrics").text
    assert metric(text, 'nmt_requests_total{status="200"}') == 2
    assert metric(text, 'nmt_requests_total{status="400"}') == 1
    assert metric(text, 'nmt_sentences_total{status="translated"}') == len(LINES) + 1
    assert metric(text, "nmt_batch_sentences_count") == 2 and metric(text, "nmt_batch_sentences_sum") == len(LINES) + 1
    assert metric(text, "nmt_request_seconds_count") == 3
    assert metric(text, "nmt_queue_sentences") == 0


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>nmt</title>" in page.text
    for asset in re.findall(r'(?:src|href)="(/page/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200
    assert "http" not in re.sub(r'href="/[^"]*"', "", page.text)  # nothing fetched from the internet


def metric(text: str, name: str) -> float:
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


class _Held:
    """A translator whose search waits for ``gate``."""

    def __init__(self, translator, gate):
        self.translator, self.gate = translator, gate

    def __getattr__(self, name):
        return getattr(self.translator, name)

    def translate_n_best(self, *args, **kwargs):
        self.gate.wait(timeout=30)
        return self.translator.translate_n_best(*args, **kwargs)
