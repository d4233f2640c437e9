"""The app's tests: plain pytest, no fixtures, no headers, no base URLs.

api-recorder's pytest plugin (on through pytest.ini's api_recorder_mode) points the SDKs at its
proxy before app.py is imported, names each test's recordings by its node id, and fails a test
whose request has no recording, with what differs from the nearest one.
"""
import app


def test_ask():
    answer = app.ask("Say hello to the team.")
    assert isinstance(answer, str) and answer


def test_stream_arrives_in_pieces():
    pieces = app.stream_story("a lighthouse")
    assert len(pieces) > 1


def test_weather_calls_the_tool():
    called, answer = app.weather_report("Paris")
    assert called == ["get_weather"]
    assert isinstance(answer, str)


def test_research_searches_the_web():
    """The web search is a recorded tool: replayed, it is never run."""
    queries, answer = app.research("What is a lighthouse?")
    assert len(queries) == 1 and queries[0]
    assert isinstance(answer, str)


def test_summarize_with_anthropic():
    summary = app.summarize("api-recorder replays recorded API calls so tests run offline.")
    assert isinstance(summary, str) and summary


def test_a_swallowed_error_still_fails_on_a_miss():
    """The app catches API errors here; a request with no recording must still fail the test."""
    try:
        answer = app.ask("What is the capital of France?")
    except Exception as error:  # noqa: BLE001  (what careless application code does)
        answer = f"sorry: {error}"
    assert answer
