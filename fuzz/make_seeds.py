#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; rerun after changing a seed).

Seeds are realistic inputs in each target's input format (see the target's header comment):
MCP messages of every method and tricky variants, credential headers, JWTs signed with the
targets' fixed secret, HMAC-signed requests, SSE and JSON list answers, configurations from
README.md. Files are named by content hash, as libFuzzer names the inputs it adds, so rerunning
does not duplicate. Crash inputs that were found and minimised live in corpus too (named
`crash-<what>`), so every run re-checks them.
"""

import base64
import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
JWT_SECRET = b"fuzz-only-secret-0123456789abcdef-0123456789"  # = fuzz_targets/jwt.rs SECRET


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        # Keep crash reproducers that were added by hand; rewrite the generated seeds.
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))
    os.makedirs(d, exist_ok=True)
    for item in items:
        data = item.encode() if isinstance(item, str) else item
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def rpc(method, params=None, id_=1):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m, separators=(",", ":"), ensure_ascii=False)


def note(method, params=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m, separators=(",", ":"))


JSONRPC = [
    rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}},
                       "clientInfo": {"name": "fuzz", "version": "1.0"}}),
    note("notifications/initialized"),
    rpc("server/discover", {}),
    rpc("ping"),
    rpc("tools/list", {"cursor": "abc"}),
    rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"progressToken": "p1"}}),
    rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2.5e3}}, id_="req-7"),
    rpc("resources/list"),
    rpc("resources/templates/list"),
    rpc("resources/read", {"uri": "file:///etc/hosts"}),
    rpc("resources/subscribe", {"uri": "demo://counter"}),
    rpc("resources/unsubscribe", {"uri": "demo://counter"}),
    rpc("prompts/list"),
    rpc("prompts/get", {"name": "greeting", "arguments": {"name": "Ada"}}),
    rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "greeting"},
                                "argument": {"name": "name", "value": "A"}}),
    rpc("completion/complete", {"ref": {"type": "ref/resource", "uri": "demo://{id}"},
                                "argument": {"name": "id", "value": "1"}}),
    rpc("logging/setLevel", {"level": "debug"}),
    note("notifications/cancelled", {"requestId": 3, "reason": "user"}),
    note("notifications/progress", {"progressToken": 5, "progress": 1, "total": 3}),
    note("notifications/roots/list_changed"),
    '{"jsonrpc":"2.0","id":"mcpgate-7","result":{"content":[{"type":"text","text":"x"}]}}',
    '{"jsonrpc":"2.0","id":4,"result":{"action":"accept","content":{"name":"Ada"}}}',
    '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}',
    '{"jsonrpc":"2.0","id":9,"error":{"code":-32602,"message":"bad","data":{"x":[1,2]}}}',
    # Tricky: whitespace, escapes, separators, duplicates, numbers, nesting.
    '{\n  "jsonrpc": "2.0",\r\n  "id": 1,\t"method": "tools/call",\n  "params": {"name": "echo"}\n}\n',
    '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"ec\\u0068o"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"a\\nb\\u2028c\\u0085d\\ud83d\\ude00"}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"a\u2028b\u2029c\u0085d\u007fe"}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"raw\nnewline"}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"drop_database"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"echo"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"\\u0061":1,"a":2}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_database","uri":1}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}',
    '{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x","name":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{"n":[1e-400,-0,0.5E-3,123456789012345678901234567890]}}}',
    '{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}',
    '{"jsonrpc":"2.0","id":1.0,"method":"ping"}',
    '{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}',
    '\ufeff{"jsonrpc":"2.0","id":1,"method":"ping"}',
    '[{"jsonrpc":"2.0","id":1,"method":"ping"}]',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":' + "[" * 70 + "]" * 70 + "}}",
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":{"a":1}}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"extra":true}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}} trailing',
]

CREDENTIALS = [
    "x-api-key: mcp_0123456789abcdef_secretpart\n",
    "X-API-Key:   padded key \t\n",
    "authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln\n",
    "Authorization: bearer    tok\n",
    "authorization: Basic Zm9vOmJhcg==\n",
    "authorization: Bearer\n",
    "authorization: Bearer a\nx-api-key: k\nx-api-key: second\n",
    "x-api-key: \xe9t\xe9\n",
    "?api_key=mcp_x%5Fy&other=1\n",
    "?a=1&api_key=&api_key=second\n",
    "?api_key=%zz%4%2B+plus%E2%82%AC\n",
    "?api_key=%0A%00%7F\n",
    "?api_key=%C3\n",
    "host: example\ncontent-type: application/json\n?x=1\n",
]


def jwt(header, claims, secret=JWT_SECRET, alg="HS256", sig=None):
    h = base64.urlsafe_b64encode(json.dumps(header, separators=(",", ":")).encode()).rstrip(b"=")
    c = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=")
    inp = h + b"." + c
    if sig is None:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        sig = base64.urlsafe_b64encode(hmac.new(secret, inp, digest).digest()).rstrip(b"=")
    return inp + b"." + sig


AUD = "https://gw.example/mcp"
GOOD = {"sub": "user-1", "exp": 1900000000, "iat": 1700000000, "aud": AUD, "scope": "read write",
        "tenant_id": "t1", "roles": ["developer"], "metadata": {"kubiya_api_key": "kb"}}
JWT = [
    b"T" + jwt({"alg": "HS256", "typ": "JWT"}, GOOD),
    b"T" + jwt({"alg": "HS384"}, GOOD, alg="HS384"),
    b"T" + jwt({"alg": "HS512", "kid": "k1"}, dict(GOOD, sub=42, aud=[AUD, "other"]), alg="HS512"),
    b"T" + jwt({"alg": "HS256"}, dict(GOOD, exp=1000)),
    b"T" + jwt({"alg": "HS256"}, GOOD, secret=b"wrong-secret-0123456789abcdef-0123"),
    b"T" + jwt({"alg": "none"}, GOOD, sig=b""),
    b"T" + jwt({"alg": "RS256", "kid": "x"}, GOOD, sig=b"c2ln"),
    b"T" + jwt({"alg": "HS256", "crit": ["exp"]}, GOOD),
    b"T" + b"eyJhbGciOiJIUzI1NiJ9..",
    b"T" + b"not.a.jwt",
    b'S{"alg":"HS256","typ":"JWT"}\n' + json.dumps(GOOD).encode(),
    b'S{"alg":"HS512"}\n{"sub":"","exp":1900000000,"aud":"' + AUD.encode() + b'"}',
    b'S{"alg":"HS256"}\n{"sub":"u","exp":1.9e9,"nbf":"soon","aud":"' + AUD.encode() + b'"}',
    b'S{"alg":"HS256","alg":"HS512"}\n{"sub":"u","exp":1900000000}',
    b'S{"alg":"HS256"}\n[1,2,3]',
    b'X\x05A{"alg":"HS256"}\n' + json.dumps(GOOD).encode(),
]


def hmac_sig(secret, ts, body):
    return hmac.new(secret, ts + b"." + body, hashlib.sha256).hexdigest().encode()


BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}'
HMAC = [
    b"Vs3cret\n1700000000\n" + hmac_sig(b"s3cret", b"1700000000", BODY) + b"\n1700000100\n" + BODY,
    b"Vs3cret\n1700000000\n" + hmac_sig(b"s3cret", b"1700000000", BODY).upper() + b"\n1700000000\n" + BODY,
    b"Vs3cret\n1700000000\n" + hmac_sig(b"s3cret", b"1700000000", BODY) + b"\n1700000000\n" + BODY + b" ",
    b"Vs3cret\n+1700000000\n" + hmac_sig(b"s3cret", b"1700000000", BODY) + b"\n1700000000\n" + BODY,
    b"Vs3cret\n1700000000\nzz\n1700000000\n" + BODY,
    b"Vs3cret\n99999999999999\n" + b"0" * 64 + b"\n1700000000\n",
    b"Ss3cret\n1700000000\n" + BODY + b" \n0\n" + BODY,
    b"Sa-long-shared-secret-for-hmac\n1700000001\n1700000002\n0\n{\"a\":\n1}",
    b"S\n-5\n\n\n",
]

SSE_OK = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"alpha"},{"name":"beta"},{"noname":1}]}}'
SSE = [
    "text/event-stream\ntools/list\n200\nevent: message\ndata: " + SSE_OK + "\n\n",
    "text/event-stream\ntools/list\n200\nid: 0\nretry: 3000\n\nevent: message\ndata: "
    '{"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\ndata: ' + SSE_OK + "\n\n",
    "text/event-stream; charset=utf-8\nprompts/list\n200\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: "
    '"result":{"prompts":[{"name":"ask"},{"name":"zed"}]}}\r\n\r\n',
    "text/event-stream\nresources/list\n200\ndata:" + json.dumps(
        {"jsonrpc": "2.0", "id": 1, "result": {"resources": [{"uri": "a://1"}, {"uri": "b://2"}]}}) + "\n\n"
    "data: " + json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"resources": [{"uri": "z://3"}]}}) + "\n\n",
    "text/event-stream\nresources/templates/list\n200\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":"
    '{"resourceTemplates":[{"uriTemplate":"a://{x}"},{"uriTemplate":"q://{y}"}]}}\r\rdata: x\n\n',
    "application/json\ntools/list\n200\n" + SSE_OK,
    "application/json\ntools/list\n200\n"
    '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"alpha"}],"tools":[{"name":"secret"}]}}',
    'application/json\ntools/list\n200\n{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"bad"}}}',
    "application/json\ntools/list\n500\nupstream exploded",
    "text/event-stream\ntools/call\n200\ndata: anything\n\n",
    "text/event-stream\ntools/list\n200\nevent: message\ndata: nope\n\n",
    "text/event-stream\ntools/list\n200\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"m\"}}",
]


# A byte of cut points, then what the upstream answered (fuzz_targets/id_restorer.rs).
ID_RESTORER = [
    b"\x0aid: 0\nretry: 3000\n\nevent: message\ndata: "
    b'{"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'
    b'data: {"jsonrpc":"2.0","id":"mcpgate-7","result":{"x":1}}\n\n',
    b'\xff{"jsonrpc":"2.0","id":"mcpgate-7","error":{"code":1,"message":"m"}}',
    b'\x00{"jsonrpc":"2.0","id":"other","result":{}}\r\n',
    b'\x55data:{"jsonrpc":"2.0","id":"mcpgate-7","result":{}}\r\n\r\n',
    b'\x00{"jsonrpc":"2.0","id" :  "mcpgate-7" ,"result":{}}\n',
]


def readme_toml_blocks():
    out, cur = [], None
    with open(os.path.join(HERE, "..", "README.md"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("```toml"):
                cur = []
            elif line.startswith("```") and cur is not None:
                out.append("".join(cur))
                cur = None
            elif cur is not None:
                cur.append(line)
    return out


UPSTREAM = '[upstream]\nurl = "http://127.0.0.1:8000/mcp"\n\n'
CONFIG = [UPSTREAM + b for b in readme_toml_blocks()] + [
    UPSTREAM + '[auth.jwt]\nsecret_env = "JWT_SECRET"\nalgorithms = ["HS256", "RS256"]\n',
    UPSTREAM + '[auth.jwt]\nsecret_env = "SHORT_SECRET"\n',
    UPSTREAM + '[auth.jwt]\nissuer = "http://evil.example/"\naudience = []\n',
    UPSTREAM + '[auth.jwt]\nsecret_env = "JWT_SECRET"\nleeway_s = 301\ntenant_claim = "org..id"\n',
    UPSTREAM + '[auth.hmac]\nskew_s = 18446744073709551615\nclients = [{ id = "c1", secret_env = "HMAC_SECRET", role = "developer" }]\n',
    UPSTREAM + '[auth.hmac]\nkey_id_header = "bad header"\nclients = []\n',
    UPSTREAM + '[auth.external]\nurl = "https://keys.example/verify"\nheader = "X-Key"\ntemplate = "{key}"\n',
    UPSTREAM + '[auth.introspection]\nurl = "https://as.example/introspect"\nclient_id = "gw"\n'
    'client_secret_env = "INTROSPECTION_SECRET"\nmax_concurrent = 4\n',
    'listen = "0.0.0.0:3210"\npublic_url = "https://mcp.example.com/"\n[upstream]\ncommand = "python server.py \'unbalanced"\n',
    '[upstream]\ncommand = "npx -y @modelcontextprotocol/server-everything"\nmax_sessions = 0\n'
    '[http]\nallowed_hosts = ["mcp.example.com", "*"]\nallowed_origins = ["https://claude.ai"]\nmax_body_bytes = 1023\n',
    UPSTREAM + '[limits]\ndefault = { per_minute = 0 }\n[[limits.tools]]\ntools = []\nper_day = 0\n',
    UPSTREAM + '[[policy.rules]]\ntools = ["*"]\npublic = true\ndeny = true\n',
    UPSTREAM + '[audit]\nretention_days = 18446744073709551615\n[store]\npath = "/tmp/x.db"\n',
    'nonsense = 1\n[upstream]\nurl = "ftp://x"\n',
    "#glob\nkp_*\nkp_me",
    "#glob\na*b?c*\naXXbübc",
    "#glob\n*?*?\n\u00e9\u4e2d",
    "#glob\n**a\naaaa",
]


def main():
    write("jsonrpc_read", JSONRPC)
    write("credentials", CREDENTIALS)
    write("jwt", JWT)
    write("hmac", HMAC)
    write("sse", SSE)
    write("config", CONFIG)
    write("id_restorer", ID_RESTORER)
    for t in ["jsonrpc_read", "credentials", "jwt", "hmac", "sse", "config", "id_restorer"]:
        print(t, len(os.listdir(os.path.join(HERE, "corpus", t))))


if __name__ == "__main__":
    main()
