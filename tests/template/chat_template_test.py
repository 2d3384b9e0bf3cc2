#!/usr/bin/env python3
"""Byte-identity test of src/tokenizer/chat_template.c against the real Jinja chat templates.

Every case (hand-picked ones plus a seeded random generator of conversations) is rendered twice:
by jinja2 set up the way Hugging Face transformers does it (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False), raise_exception), and by
$AXLLAMA_BUILD/tools/render_chat. The two must agree byte for byte. Cases the templates cannot
render (no messages) and cases the C side refuses by design (unknown role) must come back as null.

Templates: Qwen3 from $AXLLAMA_TOKENIZER_DIR/tokenizer_config.json (`chat_template`); Qwen2.5 from
the fixture qwen2.5_chat_template.jinja next to this file (see README.md there).
Prints each mismatch and ends with the line "N passed, M failed".
"""
import json
import os
import random
import subprocess
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RANDOM_CASES = 3000
SEED = 20250601


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def load_templates():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    tokenizer_dir = os.environ.get("AXLLAMA_TOKENIZER_DIR") or subprocess.run(
        [os.path.join(ROOT, "scripts", "fetch-tokenizer.sh")], check=True, capture_output=True, text=True, timeout=300
    ).stdout.strip()
    with open(os.path.join(tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        qwen3 = json.load(f)["chat_template"]
    with open(os.path.join(HERE, "qwen2.5_chat_template.jinja"), encoding="utf-8") as f:
        qwen25 = f.read()
    return {"qwen3": env.from_string(qwen3), "qwen2.5": env.from_string(qwen25)}


# ---- one case in neutral form -> (jinja kwargs, render_chat input) ----
#
# case = {family, messages, add_generation_prompt, enable_thinking: None|True|False, tools: [dict]}
# message = {role, content: str|None, reasoning_content?: str, tool_calls?: [{name, args, args_text?, nested?}]}
#   args: the argument object; args_text: Qwen3 only, the JSON text passed as the `arguments` string
#   (defaults to json.dumps(args)); nested: wrap as {"type": "function", "function": {...}} (OpenAI shape).


def call_arguments_text(family, call):
    if family == "qwen3":
        return call.get("args_text", json.dumps(call["args"], ensure_ascii=False))
    return json.dumps(call["args"], ensure_ascii=False)  # what Qwen2.5's `arguments | tojson` prints


def jinja_message(family, msg):
    out = {"role": msg["role"], "content": msg["content"] if msg["content"] is not None else ""}
    if "reasoning_content" in msg:
        out["reasoning_content"] = msg["reasoning_content"]
    if "tool_calls" in msg:
        calls = []
        for call in msg["tool_calls"]:
            # Qwen3 takes its `is string` branch; Qwen2.5 always applies tojson to the object.
            arguments = call_arguments_text(family, call) if family == "qwen3" else call["args"]
            function = {"name": call["name"], "arguments": arguments}
            calls.append({"type": "function", "function": function} if call.get("nested") else function)
        out["tool_calls"] = calls
    return out


def jinja_render(templates, case):
    family = case["family"]
    kwargs = {
        "messages": [jinja_message(family, m) for m in case["messages"]],
        "tools": case["tools"] or None,
        "add_generation_prompt": case["add_generation_prompt"],
        "bos_token": None,
        "eos_token": "<|im_end|>",
    }
    if case["enable_thinking"] is not None:
        kwargs["enable_thinking"] = case["enable_thinking"]
    if any(m["role"] not in ("system", "user", "assistant", "tool") for m in case["messages"]):
        return None  # chat_template.h: unknown roles are refused (the template would drop them)
    try:
        return templates[family].render(**kwargs)
    except jinja2.exceptions.TemplateError:
        return None  # e.g. no messages: the template reads messages[0]


def c_case(case):
    family = case["family"]
    messages = []
    for msg in case["messages"]:
        out = {"role": msg["role"], "content": msg["content"]}
        if "reasoning_content" in msg:
            out["reasoning_content"] = msg["reasoning_content"]
        if "tool_calls" in msg:
            out["tool_calls"] = [
                {"name": c["name"], "arguments_json": call_arguments_text(family, c)} for c in msg["tool_calls"]
            ]
        messages.append(out)
    out = {
        "family": family,
        "messages": messages,
        "add_generation_prompt": case["add_generation_prompt"],
        "tools_json": [json.dumps(t, ensure_ascii=False) for t in case["tools"]],
    }
    if case["enable_thinking"] is not None:
        out["enable_thinking"] = case["enable_thinking"]
    return out


def case(family, messages, add_generation_prompt=True, enable_thinking=None, tools=(), name=""):
    return {
        "name": name,
        "family": family,
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "enable_thinking": enable_thinking,
        "tools": list(tools),
    }


def sys_(text):
    return {"role": "system", "content": text}


def user(text):
    return {"role": "user", "content": text}


def asst(text, **extra):
    return {"role": "assistant", "content": text, **extra}


def tool(text):
    return {"role": "tool", "content": text}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Météo actuelle — 天气",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {}}}
TOOL_POOL = [
    WEATHER_TOOL,
    TIME_TOOL,
    {"name": "flat_tool", "description": 'quotes " and \\ backslash\nnewline', "parameters": {"x": [1, 2.5, None, True]}},
    {"type": "function", "function": {"name": "emoji", "description": "😀 ünïcödé", "parameters": {"type": "object"}}},
]


def hand_picked_cases():
    cases = []
    for family in ("qwen3", "qwen2.5"):
        f = family
        for think in (None, True, False):
            for gen in (True, False):
                cases.append(case(f, [sys_("Be brief."), user("Hi"), asst("Hello!"), user("Bye")], gen, think,
                                  name="basic turns"))
        cases += [
            case(f, [user("Hi")], name="user only"),
            case(f, [sys_("S"), user("a"), asst("b"), sys_("mid system"), user("c")], name="system not first"),
            case(f, [user("a"), sys_("late system")], name="system second"),
            case(f, [asst("assistant first")], name="assistant first"),
            case(f, [sys_("only system")], name="only system"),
            case(f, [user(None), asst(None)], name="null contents"),
            case(f, [user("q"), asst("<think>\nreason\n</think>\n\nanswer")], False, name="think last"),
            case(f, [user("q"), asst("<think>\nr1\n</think>\n\na1"), user("q2"), asst("<think>r2</think>a2")],
                 name="think earlier turn"),
            case(f, [user("q"), asst("\n\n<think>\n\nr\n\n</think>\n\n\nanswer\n\n")], False, name="think newlines"),
            case(f, [user("q"), asst("no open tag</think>answer")], False, name="close tag only"),
            case(f, [user("q"), asst("<think>a</think>b</think>c")], False, name="two close tags"),
            case(f, [user("q"), asst("<think>x<think>y</think>z")], False, name="two open tags"),
            case(f, [user("q"), asst("<think> spaced </think> answer ")], False, name="spaces kept"),
            case(f, [user("q"), asst("answer", reasoning_content="given reasoning")], False, name="reasoning given"),
            case(f, [user("q"), asst("<think>t</think>a", reasoning_content="")], False, name="reasoning empty"),
            case(f, [user("q"), asst("a", reasoning_content=""), user("q2"), asst("b")], name="empty reasoning mid"),
            case(f, [user("q"), asst("a", reasoning_content="r"), user("q2")], name="reasoning before query"),
            case(f, [user("q"), asst("\n\nans", reasoning_content="\n\nr\n\n")], False, name="reasoning strip"),
            case(f, [user("q"), asst("x", tool_calls=[{"name": "f", "args": {"a": 1}}]), tool("res"), asst("done")],
                 name="tool call round"),
            case(f, [user("q"), asst("", tool_calls=[{"name": "f", "args": {}}, {"name": "g", "args": {"b": "ü"}}]),
                     tool("r1"), tool("r2"), asst("<think>t</think>done")], name="two tool calls grouped"),
            case(f, [user("q"), asst(None, tool_calls=[{"name": "f", "args": {"a": [1, 2]}, "nested": True}])],
                 False, name="openai shape tool call"),
            case(f, [user("q"), asst("\n", reasoning_content="r", tool_calls=[{"name": "f", "args": {}}])], False,
                 name="newline content tool call"),
            case(f, [tool("first is tool"), user("q")], name="tool first"),
            case(f, [user("q"), tool("only tool last")], name="tool last"),
            case(f, [user("q"), asst("a"), user("<tool_response>\nr\n</tool_response>"), asst("<think>t</think>b")],
                 name="wrapped tool response user"),
            case(f, [user("<tool_response>x</tool_response>"), asst("<think>t</think>b")],
                 name="only wrapped user"),
            case(f, [user("<tool_response>x"), asst("<think>t</think>b")], name="half wrapped user"),
            case(f, [sys_("sys"), user("q")], tools=[WEATHER_TOOL], name="tools with system"),
            case(f, [user("q")], tools=[WEATHER_TOOL, TIME_TOOL], name="tools without system"),
            case(f, [user("q"), asst("a")], tools=TOOL_POOL, name="all tools"),
            case(f, [], name="no messages"),
            case(f, [user("q"), {"role": "developer", "content": "x"}], name="unknown role"),
            case(f, [user("unicode: 日本語 😀 é\u2028\u0085")], name="unicode"),
        ]
    cases.append(case("qwen3", [user("q"), asst("x", tool_calls=[{"name": "f", "args": {}, "args_text": '{"a":1}'}])],
                      name="qwen3 args verbatim"))
    cases.append(case("qwen3", [user("q"), asst("x", tool_calls=[{"name": "f", "args": {}, "args_text": '"str"'}])],
                      name="qwen3 args string"))
    return cases


# ---- seeded random conversations ----

PIECES = [
    "", "\n", "\n\n", " ", "hello", "Hello, world.", "héllo wörld", "日本語のテキスト", "emoji 😀👍", "tab\there",
    "a\nb", "\r\n", "  padded  ", "<think>", "</think>", "<tool_response>", "</tool_response>", "{\"k\": 1}",
    "<|im_end|>", "'quote'", "\"dq\"", "back\\slash", "\u00a0nbsp", "\u200b",
]


def random_text(rng, max_pieces=5):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces)))


def newlines(rng):
    return "\n" * rng.choice([0, 0, 1, 2, 3])


def random_think_content(rng):
    kind = rng.random()
    if kind < 0.5:
        return (newlines(rng) + "<think>" + newlines(rng) + random_text(rng, 3) + newlines(rng) + "</think>"
                + newlines(rng) + random_text(rng, 3) + newlines(rng))
    if kind < 0.7:
        return random_text(rng, 2) + "</think>" + random_text(rng, 2)
    if kind < 0.85:
        parts = [random_text(rng, 2) for _ in range(rng.randint(2, 4))]
        return rng.choice(["<think>", "</think>"]).join(parts) + "</think>" + random_text(rng, 2)
    return newlines(rng) + random_text(rng) + newlines(rng)


def random_args(rng):
    return rng.choice([{}, {"city": "Paris"}, {"q": random_text(rng, 2), "n": rng.randint(-5, 5)},
                       {"nested": {"list": [1, "ü", None, False]}, "f": 1.5}])


def random_message(rng, role):
    if role == "user":
        if rng.random() < 0.25:
            body = newlines(rng) + random_text(rng, 3) + newlines(rng)
            wrap = rng.random()
            if wrap < 0.7:
                return user("<tool_response>" + body + "</tool_response>")
            if wrap < 0.85:
                return user("<tool_response>" + body)
            return user(body + "</tool_response>")
        return user(None if rng.random() < 0.05 else random_text(rng))
    if role in ("system", "tool"):
        return {"role": role, "content": None if rng.random() < 0.05 else random_text(rng)}
    content = rng.choice([None, "", random_text(rng), random_think_content(rng), random_think_content(rng)])
    msg = asst(content)
    if rng.random() < 0.2:
        msg["reasoning_content"] = rng.choice(["", "\n", "because", "\n\nwhy\n\n", random_text(rng, 3)])
    if rng.random() < 0.3:
        msg["tool_calls"] = []
        for _ in range(rng.randint(0, 3)):
            args = random_args(rng)
            call = {"name": rng.choice(["get_weather", "now", "f_ü"]), "args": args, "nested": rng.random() < 0.5}
            if rng.random() < 0.3:
                call["args_text"] = json.dumps(args, separators=(",", ":"))
            msg["tool_calls"].append(call)
    return msg


def random_case(rng):
    family = rng.choice(["qwen3", "qwen2.5"])
    roles = []
    if rng.random() < 0.4:
        roles.append("system")
    for _ in range(rng.randint(1, 8)):
        roles.append(rng.choices(["user", "assistant", "tool", "system"], weights=[4, 4, 2, 0.5])[0])
    messages = [random_message(rng, r) for r in roles]
    tools = rng.sample(TOOL_POOL, rng.randint(1, 3)) if rng.random() < 0.3 else []
    return case(family, messages, rng.random() < 0.6, rng.choice([None, True, False]), tools, name="random")


def main():
    templates = load_templates()
    rng = random.Random(SEED)
    cases = hand_picked_cases() + [random_case(rng) for _ in range(RANDOM_CASES)]
    expected = [jinja_render(templates, c) for c in cases]

    build = os.environ.get("AXLLAMA_BUILD") or os.path.join(ROOT, "build")
    proc = subprocess.run(
        [os.path.join(build, "tools", "render_chat")],
        input=json.dumps([c_case(c) for c in cases], ensure_ascii=False),
        capture_output=True, text=True, encoding="utf-8", timeout=60,
    )
    if proc.returncode != 0:
        print(f"render_chat failed (exit {proc.returncode}): {proc.stderr}")
        print(f"0 passed, {len(cases)} failed")
        return 1
    actual = json.loads(proc.stdout)

    passed = failed = 0
    for i, (c, want, got) in enumerate(zip(cases, expected, actual)):
        if want == got:
            passed += 1
            continue
        failed += 1
        print(f"MISMATCH case {i} ({c['family']}, {c['name']}): {json.dumps(c_case(c), ensure_ascii=False)}")
        print(f"  jinja: {want!r}")
        print(f"  C:     {got!r}")
    failed += abs(len(cases) - len(actual))
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
