"""Fixtures of the official MCP conformance suites (npm @modelcontextprotocol/conformance).

Loaded only on a board whose profile says `"fixtures": ["conformance"]` (boards/conformance.json);
a normal board never carries them. Names, shapes and texts follow the suites' reference server.
"""

import json

from ..registry import ToolError, failure, text

RESIDENT = True  # its tool and prompt lists change at run time: the registry keeps it loaded

_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
# 44-byte RIFF/WAVE header (8 kHz, 8-bit mono) and 4 samples of silence.
_WAV = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQQAAACAgICA"
_NO_ARGS = {"type": "object", "additionalProperties": False}
_ANY = {"type": "object"}


def _image():
    return {"type": "image", "data": _PNG, "mimeType": "image/png"}


def _schema(props, required=None):
    s = {"type": "object", "properties": props}
    if required:
        s["required"] = required
    return s


_STRING = {"type": "string"}
_ELICIT_ASK = {
    "message": "Please provide your information",
    "requestedSchema": _schema({"username": _STRING, "email": _STRING}, ["username", "email"]),
}
_DEFAULTS_ASK = {
    "message": "Please review and update the form fields with defaults",
    "requestedSchema": _schema(
        {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": True},
        }
    ),
}
_OPTIONS = ["option1", "option2", "option3"]
_TITLED = [
    {"const": "value1", "title": "First Option"},
    {"const": "value2", "title": "Second Option"},
    {"const": "value3", "title": "Third Option"},
]
_ENUMS_ASK = {
    "message": "Please select options from the enum fields",
    "requestedSchema": _schema(
        {
            "untitledSingle": {"type": "string", "enum": _OPTIONS},
            "titledSingle": {"type": "string", "oneOf": _TITLED},
            "legacyEnum": {
                "type": "string",
                "enum": _OPTIONS,
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": _OPTIONS}},
            "titledMulti": {"type": "array", "items": {"anyOf": _TITLED}},
        }
    ),
}
_JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": _STRING, "city": _STRING},
        }
    },
    "properties": {
        "name": _STRING,
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": _STRING,
        "email": _STRING,
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def _elicit(message, props, required):
    return ("elicitation/create", {"message": message, "requestedSchema": _schema(props, required)})


def _sample(question):
    return (
        "sampling/createMessage",
        {"messages": [{"role": "user", "content": {"type": "text", "text": question}}], "maxTokens": 100},
    )


_ROOTS = ("roots/list", {})
_NAME_ASK = _elicit("What is your name?", {"name": _STRING}, ["name"])


def _content_text(answer):
    # The text of a sampling answer (CreateMessageResult content: one block or a list).
    content = answer.get("content")
    if isinstance(content, list):
        content = content[0] if content else {}
    return content.get("text", "") if isinstance(content, dict) else ""


def _accepted(answer, field):
    if answer.get("action") != "accept":
        return None
    content = answer.get("content")
    return content.get(field) if isinstance(content, dict) else None


# -- tools ------------------------------------------------------------------------------------


def _simple_text(args, ctx):
    return text("This is a simple text response for testing.")


def _image_content(args, ctx):
    return {"content": [_image()]}


def _audio_content(args, ctx):
    return {"content": [{"type": "audio", "data": _WAV, "mimeType": "audio/wav"}]}


def _embedded_resource(args, ctx):
    resource = {"uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource."}
    return {"content": [{"type": "resource", "resource": resource}]}


def _multiple_content(args, ctx):
    resource = {
        "uri": "test://mixed-content-resource",
        "mimeType": "application/json",
        "text": json.dumps({"test": "data", "value": 123}),
    }
    return {
        "content": [
            {"type": "text", "text": "Multiple content types test:"},
            _image(),
            {"type": "resource", "resource": resource},
        ]
    }


def _error_handling(args, ctx):
    return failure("This tool intentionally returns an error for testing")


async def _with_progress(args, ctx):
    for step in (0, 50, 100):
        await ctx.progress(step, 100, "step %d of 100" % step)
        if step < 100:
            await ctx.sleep(50)
    return text("Progress complete")


async def _with_logging(args, ctx):
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.log("info", message, "conformance")
        await ctx.sleep(50)
    return text("Logging complete")


async def _sampling(args, ctx):
    answer = (await ctx.ask({"llm": _sample(args.get("prompt", "Hello"))}))["llm"]
    return text("LLM response: " + (_content_text(answer) or "(empty)"))


async def _elicitation(args, ctx):
    ask = dict(_ELICIT_ASK)
    ask["message"] = args.get("message", ask["message"])
    answer = (await ctx.ask({"user": ("elicitation/create", ask)}))["user"]
    return text("User response: action=%s, content=%s" % (answer.get("action"), json.dumps(answer.get("content"))))


def _asking(ask):
    async def tool(args, ctx):
        answer = (await ctx.ask({"form": ("elicitation/create", ask)}))["form"]
        return text("Elicitation completed: action=%s, content=%s" % (answer.get("action"), answer.get("content")))

    return tool


async def _reconnection(args, ctx):
    await ctx.sleep(100)
    return text("Reconnection test completed")


def _json_schema(args, ctx):
    return text("Received: " + json.dumps(args))


async def _missing_capability(args, ctx):
    answer = (await ctx.ask({"llm": _sample("Say hello")}))["llm"]
    return text(_content_text(answer))


async def _streaming_elicitation(args, ctx):
    answer = (await ctx.ask({"user": _NAME_ASK}))["user"]
    return text("Hello, %s!" % (_accepted(answer, "name") or "stranger"))


async def _logging_tool(args, ctx):
    await ctx.log("info", "Logging tool ran", "conformance")
    return text("Logged (if asked for)")


async def _trigger_tool_change(args, ctx):
    reg = ctx.server.registry
    name = "test_dynamic_tool"
    if reg.has_tool(name):
        reg.remove_tool(name)
    else:
        reg.add_tool({"name": name, "description": "Appears and vanishes", "inputSchema": _NO_ARGS}, _simple_text)
    await ctx.server.list_changed("tools")
    return text("Tool list changed")


async def _trigger_prompt_change(args, ctx):
    reg = ctx.server.registry
    name = "test_dynamic_prompt"
    if reg.prompt(name) is not None:
        reg.remove_prompt(name)
    else:
        reg.add_prompt({"name": name, "description": "Appears and vanishes"}, _simple_prompt)
    await ctx.server.list_changed("prompts")
    return text("Prompt list changed")


# -- input_required (revision 2026-07-28; a round trip on the stream in the handshake era) ------


async def _ir_elicitation(args, ctx):
    answer = (await ctx.ask({"user_name": _NAME_ASK}))["user_name"]
    name = _accepted(answer, "name")
    return text("Hello, %s!" % name if name else "No name given (%s)" % answer.get("action"))


async def _ir_sampling(args, ctx):
    answer = (await ctx.ask({"capital_question": _sample("What is the capital of France?")}))["capital_question"]
    return text("The model said: " + (_content_text(answer) or "(nothing)"))


async def _ir_roots(args, ctx):
    roots = (await ctx.ask({"client_roots": _ROOTS}))["client_roots"]["roots"]
    return text("Client roots: " + ", ".join([r.get("uri", "?") for r in roots if isinstance(r, dict)]))


async def _ir_request_state(args, ctx):
    answer = (await ctx.ask({"confirm": _elicit("Proceed?", {"ok": {"type": "boolean"}}, ["ok"])}))["confirm"]
    return text("state-ok: confirmed=%s" % _accepted(answer, "ok"))


async def _ir_multiple(args, ctx):
    answers = await ctx.ask(
        {"user_name": _NAME_ASK, "capital_question": _sample("What is the capital of France?"), "client_roots": _ROOTS}
    )
    return text("Got %d answers: %s" % (len(answers), ", ".join(sorted(answers))))


async def _ir_multi_round(args, ctx):
    first = (await ctx.ask({"step_one": _elicit("Step 1: your name?", {"name": _STRING}, ["name"])}))["step_one"]
    second = (await ctx.ask({"step_two": _elicit("Step 2: your city?", {"city": _STRING}, ["city"])}))["step_two"]
    return text("Rounds done: %s from %s" % (_accepted(first, "name"), _accepted(second, "city")))


async def _ir_capabilities(args, ctx):
    wanted = {}
    if ctx.supports("elicitation"):
        wanted["user_name"] = _NAME_ASK
    if ctx.supports("sampling"):
        wanted["capital_question"] = _sample("What is the capital of France?")
    if ctx.supports("roots"):
        wanted["client_roots"] = _ROOTS
    if not wanted:
        raise ToolError("the client declared none of elicitation, sampling or roots")
    answers = await ctx.ask(wanted)
    return text("Asked only for what the client supports: " + ", ".join(sorted(answers)))


_TOOLS = (
    ("test_simple_text", "Returns a simple text block", _simple_text),
    ("test_image_content", "Returns an image block (1x1 PNG)", _image_content),
    ("test_audio_content", "Returns an audio block (WAV)", _audio_content),
    ("test_embedded_resource", "Returns an embedded text resource", _embedded_resource),
    ("test_multiple_content_types", "Returns text, image and resource blocks", _multiple_content),
    ("test_error_handling", "Always fails, as a tool result with isError", _error_handling),
    ("test_tool_with_progress", "Reports progress 0, 50, 100 before its result", _with_progress),
    ("test_tool_with_logging", "Logs three messages before its result", _with_logging),
    ("test_reconnection", "Answers after a short pause", _reconnection),
    ("test_missing_capability", "Needs the client's sampling capability", _missing_capability),
    ("test_streaming_elicitation", "Asks the user for their name", _streaming_elicitation),
    ("test_logging_tool", "Logs a message when the request asks for logs", _logging_tool),
    ("test_trigger_tool_change", "Adds or removes a tool, announcing it", _trigger_tool_change),
    ("test_trigger_prompt_change", "Adds or removes a prompt, announcing it", _trigger_prompt_change),
    ("test_elicitation_sep1034_defaults", "Elicits a form with default values", _asking(_DEFAULTS_ASK)),
    ("test_elicitation_sep1330_enums", "Elicits a form with every enum style", _asking(_ENUMS_ASK)),
    ("test_input_required_result_elicitation", "Needs the user's name", _ir_elicitation),
    ("test_input_required_result_sampling", "Needs an LLM answer", _ir_sampling),
    ("test_input_required_result_list_roots", "Needs the client's roots", _ir_roots),
    ("test_input_required_result_request_state", "Needs a confirmation, keeps request state", _ir_request_state),
    ("test_input_required_result_multiple_inputs", "Needs a name, an LLM answer and roots", _ir_multiple),
    ("test_input_required_result_multi_round", "Needs input over two rounds", _ir_multi_round),
    ("test_input_required_result_tampered_state", "Needs a confirmation; rejects altered state", _ir_request_state),
    ("test_input_required_result_capabilities", "Asks only for what the client supports", _ir_capabilities),
)


# -- prompts ----------------------------------------------------------------------------------


def _user(content):
    return {"role": "user", "content": content}


def _simple_prompt(args, ctx):
    return {"messages": [_user({"type": "text", "text": "This is a simple prompt for testing."})]}


def _prompt_with_arguments(args, ctx):
    said = "Prompt with arguments: arg1='%s', arg2='%s'" % (args.get("arg1"), args.get("arg2"))
    return {"messages": [_user({"type": "text", "text": said})]}


def _prompt_with_resource(args, ctx):
    uri = args["resourceUri"]
    resource = {"uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}
    return {
        "messages": [
            _user({"type": "resource", "resource": resource}),
            _user({"type": "text", "text": "Please process the embedded resource above."}),
        ]
    }


def _prompt_with_image(args, ctx):
    return {"messages": [_user(_image()), _user({"type": "text", "text": "Please analyze the image above."})]}


async def _ir_prompt(args, ctx):
    answer = await ctx.ask({"user_context": _elicit("What context?", {"context": _STRING}, ["context"])})
    said = _accepted(answer["user_context"], "context") or "none"
    return {"messages": [_user({"type": "text", "text": "Context given: " + said})]}


def _complete_arg(name, value, known):
    return [v for v in ("paris", "park", "party", "test", "testing", "tester") if v.startswith(value)]


def _arg(name, description, required=True):
    return {"name": name, "description": description, "required": required}


# -- resources --------------------------------------------------------------------------------


def _static_binary(uri):
    return [{"uri": uri, "mimeType": "image/png", "blob": _PNG}]


def _template_data(uri, variables):
    return json.dumps({"id": variables["id"], "templateTest": True, "data": "Data for ID: " + variables["id"]})


def _complete_id(name, value, known):
    return [v for v in ("123", "456", "789") if v.startswith(value)]


def register(reg, profile):
    """Add every conformance fixture (tools, prompts, resources) to the registry."""
    for name, description, fn in _TOOLS:
        reg.add_tool({"name": name, "description": description, "inputSchema": _NO_ARGS}, fn)
    reg.add_tool(
        {"name": "test_sampling", "description": "Asks the client's LLM", "inputSchema": _schema({"prompt": _STRING})},
        _sampling,
    )
    reg.add_tool(
        {"name": "test_elicitation", "description": "Asks the user", "inputSchema": _schema({"message": _STRING})},
        _elicitation,
    )
    reg.add_tool(
        {
            "name": "json_schema_2020_12_tool",
            "description": "JSON Schema 2020-12 keywords",
            "inputSchema": _JSON_SCHEMA_2020_12,
        },
        _json_schema,
    )
    reg.add_tool(
        {
            "name": "test_custom_header",
            "description": "Echoes a value that is mirrored in the Mcp-Param-Region header",
            "inputSchema": _schema({"region": {"type": "string", "x-mcp-header": "Region"}}),
        },
        lambda args, ctx: text("Region: %s" % args.get("region")),
    )
    reg.changing.add("tools")
    reg.changing.add("prompts")

    reg.add_prompt({"name": "test_simple_prompt", "description": "A prompt without arguments"}, _simple_prompt)
    reg.add_prompt(
        {
            "name": "test_prompt_with_arguments",
            "description": "A prompt with two arguments",
            "arguments": [_arg("arg1", "First argument"), _arg("arg2", "Second argument")],
        },
        _prompt_with_arguments,
        _complete_arg,
    )
    reg.add_prompt(
        {
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt embedding a resource",
            "arguments": [_arg("resourceUri", "URI of the resource to embed")],
        },
        _prompt_with_resource,
    )
    reg.add_prompt({"name": "test_prompt_with_image", "description": "A prompt with an image"}, _prompt_with_image)
    reg.add_prompt(
        {"name": "test_input_required_result_prompt", "description": "A prompt that needs context first"},
        _ir_prompt,
    )

    reg.add_resource(
        {"uri": "test://static-text", "name": "static-text", "description": "Static text", "mimeType": "text/plain"},
        lambda uri: "This is the content of the static text resource.",
    )
    reg.add_resource(
        {"uri": "test://static-binary", "name": "static-binary", "description": "A PNG", "mimeType": "image/png"},
        _static_binary,
    )
    reg.add_resource(
        {
            "uri": "test://watched-resource",
            "name": "watched-resource",
            "description": "Subscribe to me",
            "mimeType": "text/plain",
        },
        lambda uri: "Watched resource content",
    )
    reg.add_template(
        {
            "uriTemplate": "test://template/{id}/data",
            "name": "template",
            "description": "Data for an id",
            "mimeType": "application/json",
        },
        _template_data,
        _complete_id,
    )
