"""A small assistant built on the official SDKs, as an application would be: its clients are made
once, at import time, from the environment (OPENAI_API_KEY and OPENAI_BASE_URL, ANTHROPIC_API_KEY
and ANTHROPIC_BASE_URL), with no test hooks of any kind.

Its web search is a tool, recorded and replayed beside the model calls by api-recorder's
`recorded_tool`: in replay mode it is never run.

Its tests (tests/test_app.py) run against recordings under api-recorder's pytest plugin; `python
app.py` runs under `api-recorder run --provider openai` (and `python app.py summarize` under
`--provider anthropic`), replayed from recordings/. The model is the tiny Gemma 3 270M that the recordings were
made with (a local llama.cpp server standing in for the providers), so the answers are junk, but
the traffic is real.
"""
from __future__ import annotations

import json
import os
import sys

from anthropic import Anthropic
from api_recorder import recorded_tool
from openai import OpenAI

MODEL = os.environ.get("APP_MODEL", "gemma-3-270m")

openai_client = OpenAI(max_retries=0, timeout=120)
anthropic_client = Anthropic(max_retries=0, timeout=120)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(question: str) -> str:
    """One chat completion."""
    completion = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=16, temperature=0)
    return completion.choices[0].message.content or ""


def stream_story(topic: str) -> list[str]:
    """A streamed chat completion, as the pieces of text arrived."""
    stream = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"Tell a very short story about {topic}."}],
        max_tokens=16, temperature=0, stream=True)
    return [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]


def get_weather(city: str) -> str:
    """The tool the model may call (a stand-in for a real weather API)."""
    return f"It is sunny and 21 degrees in {city}."


def weather_report(city: str) -> tuple[list[str], str]:
    """A tool loop: the model asks for the weather tool, gets its result, and answers.

    Returns the tools called and the final answer.
    """
    messages: list[dict] = [{"role": "user", "content": f"What is the weather in {city}?"}]
    first = openai_client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required",
        parallel_tool_calls=False, max_tokens=32, temperature=0)
    message = first.choices[0].message
    calls = []
    for call in message.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments)
        except json.JSONDecodeError:  # a tiny model's arguments are not always JSON
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append((call, arguments))
    # The assistant's turn goes back with the arguments as understood, always valid JSON.
    messages.append({
        "role": "assistant",
        "content": message.content,
        "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": json.dumps(arguments)}}
            for call, arguments in calls],
    })
    for call, arguments in calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": get_weather(arguments.get("city") or city)})
    final = openai_client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, temperature=0)
    return [call.function.name for call, _ in calls], final.choices[0].message.content or ""


SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web; returns the top results.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}

# What the search gives unless APP_SEARCH=tavily: a tiny offline index, so the example records
# without a key (its recordings were made this way).
OFFLINE_INDEX = [
    {"url": "https://en.wikipedia.org/wiki/Lighthouse", "title": "Lighthouse",
     "content": "A lighthouse is a tower that emits light to guide ships at sea."},
    {"url": "https://en.wikipedia.org/wiki/Paris", "title": "Paris",
     "content": "Paris is the capital and largest city of France."},
    {"url": "https://en.wikipedia.org/wiki/Software_testing", "title": "Software testing",
     "content": "Software testing checks that software does what it should."},
]


@recorded_tool("tavily", "web_search")
def web_search(query: str, top_k: int = 2) -> list[dict]:
    """The web search the model may call: Tavily with APP_SEARCH=tavily (and TAVILY_API_KEY), else
    the offline index.

    Recorded by api-recorder (provider tavily, tool web_search, the arguments as passed) in record
    modes, and replayed without running in replay mode."""
    if os.environ.get("APP_SEARCH") == "tavily":
        from tavily import TavilyClient  # only needed to search for real

        found = TavilyClient().search(query, max_results=top_k)["results"]
        return [{"url": r["url"], "title": r["title"], "content": r["content"]} for r in found]
    words = {word.strip("?.,!").lower() for word in query.split()}
    ranked = sorted(OFFLINE_INDEX, key=lambda page: -len(words & set(page["content"].lower().split())))
    return ranked[:top_k]


def research(question: str) -> tuple[list[str], str]:
    """An agent loop with a tool that is a local function: the model asks for a web search, the
    app runs it (through `recorded_tool`), and the model answers from the results.

    Returns the queries searched and the final answer.
    """
    messages: list[dict] = [{"role": "user", "content": question}]
    first = openai_client.chat.completions.create(
        model=MODEL, messages=messages, tools=[SEARCH_TOOL], tool_choice="required",
        parallel_tool_calls=False, max_tokens=32, temperature=0)
    message = first.choices[0].message
    queries = []
    messages.append({"role": "assistant", "content": message.content, "tool_calls": []})
    for call in message.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments)
        except json.JSONDecodeError:  # a tiny model's arguments are not always JSON
            arguments = {}
        query = arguments.get("query") if isinstance(arguments, dict) else None
        query = query if isinstance(query, str) and query else question
        queries.append(query)
        messages[-1]["tool_calls"].append({
            "id": call.id, "type": "function",
            "function": {"name": call.function.name, "arguments": json.dumps({"query": query})}})
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(web_search(query))})
    final = openai_client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, temperature=0)
    return queries, final.choices[0].message.content or ""


def summarize(text: str) -> str:
    """One Anthropic Messages call."""
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": f"Summarize in one line: {text}"}])
    return "".join(block.text for block in message.content if block.type == "text")


COMMANDS = {
    "ask": lambda: ask("Say hello to the team."),
    "story": lambda: "".join(stream_story("a lighthouse")),
    "weather": lambda: weather_report("Paris"),
    "research": lambda: research("What is a lighthouse?"),
    "summarize": lambda: summarize("api-recorder replays recorded API calls so tests run offline."),
}


def main(argv: list[str]) -> int:
    """`python app.py [ask|story|weather|research|summarize ...]`: the OpenAI ones when none is named."""
    names = argv or ["ask", "story", "weather", "research"]
    unknown = [name for name in names if name not in COMMANDS]
    if unknown:
        print(f"unknown: {', '.join(unknown)}; use {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"{name}:", COMMANDS[name]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
