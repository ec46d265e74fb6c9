"""The differential suite's messages and the policy they are judged against.

Each case is raw bytes, sent as they are: the point is how the gateway and the upstream SDKs read
what is not plain JSON. `%ID%` and `%ID2%` are replaced by fresh request ids (`%ID2%` is the id
of a call smuggled inside the visible one). A case may say what must happen for the read-only
key (`user`) and for the admin key (`admin`): "ran" (exactly the named execution), "refused"
(the gateway said no and nothing ran), or nothing (either is fine, as long as whatever ran is
what the gateway authorized and audited, and is allowed to that key).
"""

from __future__ import annotations

from dataclasses import dataclass

NL, CR = b"\n", b"\r"
U2028, U2029, U0085 = "\u2028".encode(), "\u2029".encode(), "\u0085".encode()
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    user: str | None = None  # "ran" | "refused" | None
    admin: str | None = None
    expect: tuple[str, str] | None = None  # (kind, target) for "ran"
    limit_only: bool = False  # only in the rate-limited variant


def env(method: str, params: bytes | None = None, rid: bytes = b"%ID%") -> bytes:
    p = b"" if params is None else b',"params":' + params
    return b'{"jsonrpc":"2.0","id":' + rid + b',"method":"' + method.encode() + b'"' + p + b"}"


def tool(name: str, args: bytes = b"{}") -> bytes:
    return b'{"name":"' + name.encode() + b'","arguments":' + args + b"}"


ECHO_ARGS = b'{"text":"hi"}'
ECHO = env("tools/call", tool("echo", ECHO_ARGS))
HIDDEN_ADMIN = env("tools/call", tool("admin_tool"), b"%ID2%")
HIDDEN_DENIED = env("tools/call", tool("denied_tool"), b"%ID2%")
HIDDEN_ECHO = env("tools/call", tool("echo", ECHO_ARGS), b"%ID2%")
HIDDEN_READ = env("resources/read", b'{"uri":"test://admin"}', b"%ID2%")


def smuggle(sep: bytes, hidden: bytes = HIDDEN_ADMIN, where: str = "params") -> bytes:
    """A visible echo call with a whole second message on its own line inside it."""
    inner = sep + hidden + sep
    if where == "params":
        return env("tools/call", b'{"name":"echo","arguments":' + ECHO_ARGS + b',"x":' + inner + b"}")
    if where == "arguments":
        return env("tools/call", b'{"name":"echo","arguments":{"text":"hi","x":' + inner + b"}}")
    if where == "meta":
        return env("tools/call", b'{"name":"echo","arguments":' + ECHO_ARGS + b',"_meta":{"x":' + inner + b"}}")
    raise ValueError(where)


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


RAN, REFUSED = "ran", "refused"

CASES: list[Case] = [
    # ---- controls: the suite cannot pass by refusing everything -------------------------------
    Case("control/echo", ECHO, RAN, RAN, ("tool", "echo")),
    Case("control/admin_tool", env("tools/call", tool("admin_tool")), REFUSED, RAN, ("tool", "admin_tool")),
    Case("control/denied_tool", env("tools/call", tool("denied_tool")), REFUSED, REFUSED),
    Case("control/read-public", env("resources/read", b'{"uri":"test://public"}'), RAN, RAN, ("resource", "test://public")),
    Case("control/read-admin", env("resources/read", b'{"uri":"test://admin"}'), REFUSED, RAN, ("resource", "test://admin")),
    Case("control/prompt-greet", env("prompts/get", b'{"name":"greet","arguments":{"name":"ada"}}'), RAN, RAN, ("prompt", "greet")),
    Case("control/prompt-admin", env("prompts/get", b'{"name":"admin_prompt"}'), REFUSED, RAN, ("prompt", "admin_prompt")),
    Case("control/subscribe-public", env("resources/subscribe", b'{"uri":"test://public"}'), RAN, RAN, ("subscribe", "test://public")),
    Case("control/subscribe-admin", env("resources/subscribe", b'{"uri":"test://admin"}'), REFUSED, RAN, ("subscribe", "test://admin")),
    Case("control/complete-greet", env("completion/complete", b'{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"a"}}'), RAN, RAN, ("completion", "greet")),
    # ---- a second message on its own line (a stdio upstream reads one message per line) -------
    Case("smuggle/lf-in-params", smuggle(NL)),
    Case("smuggle/lf-in-arguments", smuggle(NL, where="arguments")),
    Case("smuggle/lf-in-meta", smuggle(NL, where="meta")),
    Case("smuggle/lf-denied", smuggle(NL, HIDDEN_DENIED)),
    Case("smuggle/lf-read-admin", smuggle(NL, HIDDEN_READ)),
    Case("smuggle/cr-in-params", smuggle(CR)),
    Case("smuggle/crlf-in-params", smuggle(CR + NL)),
    Case("smuggle/u2028-in-params", smuggle(U2028)),
    Case("smuggle/u2029-in-params", smuggle(U2029)),
    Case("smuggle/u0085-in-params", smuggle(U0085)),
    Case("smuggle/second-message", ECHO + NL + HIDDEN_ADMIN),
    Case("smuggle/second-message-cr", ECHO + CR + HIDDEN_ADMIN),
    Case("smuggle/concatenated", ECHO + HIDDEN_ADMIN),
    Case("smuggle/notification-then-call", b'{"jsonrpc":"2.0","method":"notifications/initialized"}' + NL + HIDDEN_ADMIN),
    Case("smuggle/notification-params", b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"x":' + NL + HIDDEN_ADMIN + NL + b"}}"),
    Case("smuggle/prompt-greet-hides-admin", env("prompts/get", b'{"name":"greet","arguments":{"name":"a"},"x":' + NL + HIDDEN_ADMIN + NL + b"}")),
    Case("smuggle/in-string-u2028", env("tools/call", tool("echo", b'{"text":"a' + U2028 + HIDDEN_ADMIN.replace(b'"', b'\\"') + U2028 + b'"}')), RAN, RAN, ("tool", "echo")),
    # ---- line breaks and other bytes between and inside tokens --------------------------------
    Case("ws/lf-between-tokens", ECHO.replace(b",", b"," + NL), RAN, RAN, ("tool", "echo")),
    Case("ws/cr-between-tokens", ECHO.replace(b",", b"," + CR), RAN, RAN, ("tool", "echo")),
    Case("ws/tab-between-tokens", ECHO.replace(b",", b",\t"), RAN, RAN, ("tool", "echo")),
    Case("ws/u2028-between-tokens", ECHO.replace(b",", b"," + U2028), REFUSED, REFUSED),
    Case("ws/u2029-between-tokens", ECHO.replace(b",", b"," + U2029), REFUSED, REFUSED),
    Case("ws/u0085-between-tokens", ECHO.replace(b",", b"," + U0085), REFUSED, REFUSED),
    Case("ws/raw-lf-in-string", env("tools/call", tool("echo", b'{"text":"a' + NL + b'b"}')), REFUSED, REFUSED),
    Case("ws/raw-cr-in-string", env("tools/call", tool("echo", b'{"text":"a' + CR + b'b"}')), REFUSED, REFUSED),
    Case("ws/raw-lf-in-name", env("tools/call", b'{"name":"admin' + NL + b'_tool","arguments":{}}'), REFUSED, REFUSED),
    Case("ws/u2028-in-string", env("tools/call", tool("echo", b'{"text":"a' + U2028 + U2029 + U0085 + b'b"}')), RAN, RAN, ("tool", "echo")),
    # ---- duplicate keys, at every level -------------------------------------------------------
    Case("dup/method", b'{"jsonrpc":"2.0","id":%ID%,"method":"ping","params":' + tool("admin_tool") + b',"method":"tools/call"}'),
    Case("dup/method-list-then-call", b'{"jsonrpc":"2.0","id":%ID%,"method":"tools/list","method":"tools/call","params":' + tool("admin_tool") + b"}"),
    Case("dup/id", b'{"jsonrpc":"2.0","id":%ID%,"id":%ID2%,"method":"tools/call","params":' + tool("echo", ECHO_ARGS) + b"}"),
    Case("dup/jsonrpc", b'{"jsonrpc":"1.0","jsonrpc":"2.0","id":%ID%,"method":"tools/call","params":' + tool("echo", ECHO_ARGS) + b"}"),
    Case("dup/params", env("tools/call", tool("echo", ECHO_ARGS))[:-1] + b',"params":' + tool("admin_tool") + b"}"),
    Case("dup/params-denied", env("tools/call", tool("echo", ECHO_ARGS))[:-1] + b',"params":' + tool("denied_tool") + b"}"),
    Case("dup/name-admin-last", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"name":"admin_tool"}')),
    Case("dup/name-denied-last", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"name":"denied_tool"}')),
    Case("dup/name-echo-last", env("tools/call", b'{"name":"denied_tool","arguments":{"text":"hi"},"name":"echo"}')),
    Case("dup/name-whoami-first", env("tools/call", b'{"name":"whoami","arguments":{},"name":"denied_tool"}')),
    Case("dup/arguments", env("tools/call", b'{"name":"echo","arguments":{"text":"a"},"arguments":{"text":"b"}}')),
    Case("dup/arguments-api_key", env("tools/call", tool("echo", b'{"text":"hi","api_key":"a","api_key":"b"}'))),
    Case("dup/meta", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":1},"_meta":{"progressToken":2}}')),
    Case("dup/meta-inner", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":1,"progressToken":"x"}}')),
    Case("dup/uri-read", env("resources/read", b'{"uri":"test://public","uri":"test://admin"}')),
    Case("dup/uri-subscribe", env("resources/subscribe", b'{"uri":"test://public","uri":"test://admin"}')),
    Case("dup/prompt-name", env("prompts/get", b'{"name":"greet","arguments":{"name":"a"},"name":"admin_prompt"}')),
    Case("dup/escaped-key-name", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"n\\u0061me":"admin_tool"}')),
    Case("dup/escaped-key-uri", env("resources/read", b'{"uri":"test://public","\\u0075ri":"test://admin"}')),
    Case("dup/escaped-key-method", b'{"jsonrpc":"2.0","id":%ID%,"method":"ping","m\\u0065thod":"tools/call","params":' + tool("admin_tool") + b"}"),
    # ---- targets of the wrong type ------------------------------------------------------------
    Case("type/name-int", env("tools/call", b'{"name":1,"arguments":{}}'), REFUSED, REFUSED),
    Case("type/name-null", env("tools/call", b'{"name":null,"arguments":{}}'), REFUSED, REFUSED),
    Case("type/name-array", env("tools/call", b'{"name":["echo"],"arguments":{"text":"hi"}}'), REFUSED, REFUSED),
    Case("type/name-object", env("tools/call", b'{"name":{"name":"admin_tool"},"arguments":{}}'), REFUSED, REFUSED),
    Case("type/name-missing", env("tools/call", b'{"arguments":{"text":"hi"}}'), REFUSED, REFUSED),
    Case("type/uri-int-beside-name", env("tools/call", b'{"name":"echo","arguments":{},"uri":1}')),
    Case("type/uri-int-beside-echo", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"uri":1}')),
    Case("type/uri-int-beside-admin", env("tools/call", b'{"name":"admin_tool","arguments":{},"uri":1}')),
    Case("type/uri-int", env("resources/read", b'{"uri":1}'), REFUSED, REFUSED),
    Case("type/name-int-beside-uri", env("resources/read", b'{"uri":"test://admin","name":1}')),
    Case("type/uri-int-beside-prompt", env("prompts/get", b'{"name":"admin_prompt","uri":1}')),
    Case("type/arguments-string", env("tools/call", b'{"name":"echo","arguments":"text"}')),
    Case("type/params-array", env("tools/call", b'["admin_tool",{}]')),
    Case("type/params-string", env("tools/call", b'"admin_tool"')),
    Case("type/method-int", b'{"jsonrpc":"2.0","id":%ID%,"method":1,"params":' + tool("admin_tool") + b"}", REFUSED, REFUSED),
    # ---- extra fields, escapes, case ----------------------------------------------------------
    Case("extra/params-field", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"extra":{"name":"admin_tool"}}')),
    Case("extra/envelope-field", ECHO[:-1] + b',"extra":{"method":"tools/call","params":' + tool("admin_tool") + b"}}"),
    Case("escape/u0061dmin_tool", env("tools/call", b'{"name":"\\u0061dmin_tool","arguments":{}}'), REFUSED, RAN, ("tool", "admin_tool")),
    Case("escape/admin-u005f-tool", env("tools/call", b'{"name":"admin\\u005ftool","arguments":{}}'), REFUSED, RAN, ("tool", "admin_tool")),
    Case("escape/ech-u006f", env("tools/call", b'{"name":"ech\\u006f","arguments":{"text":"hi"}}'), RAN, RAN, ("tool", "echo")),
    Case("escape/method-slash", b'{"jsonrpc":"2.0","id":%ID%,"method":"tools\\/call","params":' + tool("admin_tool") + b"}", REFUSED, RAN, ("tool", "admin_tool")),
    Case("escape/name-nul", env("tools/call", b'{"name":"admin_tool\\u0000","arguments":{}}')),
    Case("case/Name-beside-name", env("tools/call", b'{"Name":"admin_tool","name":"echo","arguments":{"text":"hi"}}')),
    Case("case/NAME-only", env("tools/call", b'{"NAME":"admin_tool","arguments":{}}')),
    Case("case/Method", b'{"jsonrpc":"2.0","id":%ID%,"Method":"tools/call","method":"ping","params":' + tool("admin_tool") + b"}"),
    Case("case/Tools-Call", env("Tools/Call", tool("admin_tool"))),
    Case("case/Uri-read", env("resources/read", b'{"URI":"test://admin","uri":"test://public"}')),
    # ---- ids ----------------------------------------------------------------------------------
    Case("id/null-admin", env("tools/call", tool("admin_tool"), b"null"), REFUSED, None),
    Case("id/null-echo", env("tools/call", tool("echo", ECHO_ARGS), b"null")),
    Case("id/1e400", env("tools/call", tool("admin_tool"), b"1e400"), REFUSED, None),
    Case("id/1e400-echo", env("tools/call", tool("echo", ECHO_ARGS), b"1e400")),
    Case("id/huge-int", env("tools/call", tool("echo", ECHO_ARGS), b"123456789012345678901234567890")),
    Case("id/fraction", env("tools/call", tool("echo", ECHO_ARGS), b"1.5")),
    Case("id/negative-zero", env("tools/call", tool("echo", ECHO_ARGS), b"-0")),
    Case("id/bool", env("tools/call", tool("echo", ECHO_ARGS), b"true"), REFUSED, REFUSED),
    Case("id/object", env("tools/call", tool("echo", ECHO_ARGS), b'{"a":1}'), REFUSED, REFUSED),
    Case("id/NaN", env("tools/call", tool("echo", ECHO_ARGS), b"NaN"), REFUSED, REFUSED),
    # ---- batches ------------------------------------------------------------------------------
    Case("batch/echo", b"[" + ECHO + b"]", REFUSED, REFUSED),
    Case("batch/admin", b"[" + HIDDEN_ADMIN + b"]", REFUSED, REFUSED),
    Case("batch/echo-and-admin", b"[" + ECHO + b"," + HIDDEN_ADMIN + b"]", REFUSED, REFUSED),
    Case("batch/nested", b"[[" + HIDDEN_ADMIN + b"]]", REFUSED, REFUSED),
    Case("batch/empty", b"[]", REFUSED, REFUSED),
    # ---- not JSON, or not quite ---------------------------------------------------------------
    Case("bom/echo", BOM + ECHO),
    Case("bom/admin", BOM + env("tools/call", tool("admin_tool")), REFUSED, None),
    Case("comment/block", ECHO.replace(b'"id"', b'/* c */"id"'), REFUSED, REFUSED),
    Case("comment/line", b"// c" + NL + ECHO, REFUSED, REFUSED),
    Case("comment/hides-name", env("tools/call", b'{"name":"echo"/*,"name":"admin_tool"*/,"arguments":{"text":"hi"}}'), REFUSED, REFUSED),
    Case("garbage/trailing", ECHO + b"garbage", REFUSED, REFUSED),
    Case("garbage/trailing-brace", ECHO + b"}", REFUSED, REFUSED),
    Case("comma/trailing-in-params", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},}'), REFUSED, REFUSED),
    Case("comma/trailing-in-envelope", ECHO[:-1] + b",}", REFUSED, REFUSED),
    Case("surrogate/lone-in-text", env("tools/call", tool("echo", b'{"text":"\\ud800"}'))),
    Case("surrogate/lone-in-name", env("tools/call", b'{"name":"admin_tool\\ud800","arguments":{}}')),
    Case("surrogate/lone-key", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"\\ud800":"admin_tool"}')),
    Case("utf8/invalid-in-text", env("tools/call", tool("echo", b'{"text":"\xff\xfe"}')), REFUSED, REFUSED),
    Case("utf8/invalid-in-name", env("tools/call", b'{"name":"admin_tool\xc0","arguments":{}}'), REFUSED, REFUSED),
    Case("utf8/overlong-slash", b'{"jsonrpc":"2.0","id":%ID%,"method":"tools\xc0\xafcall","params":' + tool("admin_tool") + b"}", REFUSED, REFUSED),
    Case("deep/1000-in-arguments", env("tools/call", tool("echo", b'{"text":"hi","d":' + deep(1000) + b"}"))),
    Case("deep/1000-in-params", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"d":' + deep(1000) + b"}")),
    Case("number/NaN-arg", env("tools/call", tool("echo", b'{"text":"hi","n":NaN}')), REFUSED, REFUSED),
    Case("number/Infinity-arg", env("tools/call", tool("echo", b'{"text":"hi","n":Infinity}')), REFUSED, REFUSED),
    Case("number/huge-arg", env("tools/call", tool("echo", b'{"text":"hi","n":1e400}'))),
    Case("quote/single-envelope", ECHO.replace(b'"', b"'"), REFUSED, REFUSED),
    Case("quote/single-name", env("tools/call", b"{\"name\":'admin_tool',\"arguments\":{}}"), REFUSED, REFUSED),
    # ---- other methods that name a target -----------------------------------------------------
    Case("complete/admin_prompt", env("completion/complete", b'{"ref":{"type":"ref/prompt","name":"admin_prompt"},"argument":{"name":"x","value":""}}')),
    Case("complete/admin-resource", env("completion/complete", b'{"ref":{"type":"ref/resource","uri":"test://admin"},"argument":{"name":"x","value":""}}')),
    Case("complete/dup-ref-name", env("completion/complete", b'{"ref":{"type":"ref/prompt","name":"greet","name":"admin_prompt"},"argument":{"name":"x","value":""}}')),
    Case("subscribe/admin", env("resources/subscribe", b'{"uri":"test://admin"}'), REFUSED, RAN, ("subscribe", "test://admin")),
    Case("prompt/admin-dup-name-first", env("prompts/get", b'{"name":"admin_prompt","name":"greet","arguments":{"name":"a"}}')),
    Case("notification/tools-call-admin", b'{"jsonrpc":"2.0","method":"tools/call","params":' + tool("admin_tool") + b"}", REFUSED, None),
    Case("notification/tools-call-echo", b'{"jsonrpc":"2.0","method":"tools/call","params":' + tool("echo", ECHO_ARGS) + b"}"),
]

# The rate-limited variant: echo is limited to LIMIT_PER_MINUTE calls a minute per key.
LIMIT_PER_MINUTE = 3
LIMIT_CASES: list[Case] = [
    *[Case(f"limit/echo-{i + 1}", ECHO, RAN, RAN, ("tool", "echo"), True) for i in range(LIMIT_PER_MINUTE)],
    Case("limit/echo-over", ECHO, REFUSED, REFUSED, None, True),
    Case("limit/dup-name-echo-last", env("tools/call", b'{"name":"admin_tool","arguments":{"text":"hi"},"name":"echo"}'), limit_only=True),
    Case("limit/dup-name-unknown-then-echo", env("tools/call", b'{"name":"not_a_tool","arguments":{"text":"hi"},"name":"echo"}'), limit_only=True),
    Case("limit/uri-int-beside-echo", env("tools/call", b'{"name":"echo","arguments":{"text":"hi"},"uri":1}'), limit_only=True),
    Case("limit/prompt-hides-echo", env("prompts/get", b'{"name":"greet","arguments":{"name":"a"},"x":' + NL + HIDDEN_ECHO + NL + b"}"), limit_only=True),
    Case("limit/echo-escaped", env("tools/call", b'{"name":"\\u0065cho","arguments":{"text":"hi"}}'), REFUSED, REFUSED, None, True),
]

# ---- the policy, as the suite's config file states it, for judging what ran ------------------
USER_MAY = {("tool", "echo"), ("resource", "test://public"), ("subscribe", "test://public"), ("prompt", "greet"),
            ("completion", "greet"), ("completion", "test://public")}
ADMIN_MAY = USER_MAY | {("tool", "admin_tool"), ("resource", "test://admin"), ("subscribe", "test://admin"),
                        ("prompt", "admin_prompt"), ("completion", "admin_prompt"), ("completion", "test://admin")}
MAY = {"user": USER_MAY, "admin": ADMIN_MAY}

# What each MCP method runs, in the recording's words.
KIND_OF_METHOD = {"tools/call": "tool", "resources/read": "resource", "resources/subscribe": "subscribe",
                  "prompts/get": "prompt", "completion/complete": "completion"}

POLICY_TOML = """
# The differential suite's policy: the first rule that matches decides.
[[policy.rules]]
tools = ["denied_tool"]
deny = true

[[policy.rules]]
tools = ["echo"]
permissions = ["read"]

[[policy.rules]]
tools = ["admin_tool"]
role = "admin"

[[policy.rules]]
methods = ["prompts/get", "completion/complete"]
tools = ["greet"]
permissions = ["read"]

[[policy.rules]]
methods = ["prompts/get", "completion/complete"]
tools = ["admin_prompt"]
role = "admin"

[[policy.rules]]
methods = ["resources/*", "completion/complete"]
tools = ["test://public"]
permissions = ["read"]

[[policy.rules]]
methods = ["resources/*", "completion/complete"]
tools = ["test://admin"]
role = "admin"

[upstream]
# A message the upstream never answers (it read something else) must not hold the suite up.
request_timeout_ms = 4000
"""

LIMIT_TOML = f"""
[[limits.tools]]
tools = ["echo"]
per_minute = {LIMIT_PER_MINUTE}
"""
