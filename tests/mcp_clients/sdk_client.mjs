// Drive an MCP server over stdio with the official TypeScript SDK's client.
//
//   node sdk_client.mjs MODE -- COMMAND [ARG...]      (the server's command line)
//
// Prints one JSON document on stdout; tests/test_mcp_clients.py asserts on it.
//   list        tools/list, and every problem the strict check finds: a schema Ajv
//               (strict mode) will not compile, a tool without a title or without all
//               four hints, a parameter without a description, a description with
//               docstring indentation
//   calls       the steps on stdin ([{"tool": NAME, "arguments": {...}}, ...]) after a
//               tools/list, so the client checks each structured result against the
//               tool's output schema; each step's result, or what the client threw
//   hostile     raw messages the SDK's own parser would drop, made as JavaScript makes
//               them (a string sliced through an emoji), each with its own id; the
//               answer to each and how long it took
//   concurrent  N (stdin: {"n": N}) add_task calls then session_save from each of two
//               clients at once, each with its own server process (the second
//               command line follows a second --)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Ajv from "ajv";
import Ajv2020 from "ajv/dist/2020.js";

const TIMEOUT_MS = 20000;
const argv = process.argv.slice(2);
const mode = argv[0];
const cut = argv.indexOf("--");
const rest = argv.slice(cut + 1);
const second = rest.indexOf("--");
const commands = second === -1 ? [rest] : [rest.slice(0, second), rest.slice(second + 1)];

function transportFor([command, ...args]) {
  return new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
}

async function connect(commandLine) {
  const client = new Client({ name: "lifecycle-tests", version: "1.0.0" });
  await client.connect(transportFor(commandLine));
  return client;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
}

// What strict clients refuse though a schema validator may not: a bare true/false
// subschema, a type array ("type": ["null", ...]), a property with no type at all.
function shapeProblems(schema, where, problems) {
  if (typeof schema === "boolean") {
    problems.push(`${where}: a bare ${schema} schema`);
    return;
  }
  if (schema === null || typeof schema !== "object") return;
  if (Array.isArray(schema.type)) problems.push(`${where}: a type array`);
  const typed = ["type", "anyOf", "oneOf", "allOf", "enum", "const", "$ref"];
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    if (typeof sub === "object" && !typed.some((k) => k in sub)) {
      problems.push(`${where}.${name}: no type`);
    }
    shapeProblems(sub, `${where}.${name}`, problems);
  }
  for (const key of ["items", "additionalProperties"]) {
    if (typeof schema[key] === "object") shapeProblems(schema[key], `${where}.${key}`, problems);
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    (schema[key] ?? []).forEach((sub, i) => shapeProblems(sub, `${where}.${key}[${i}]`, problems));
  }
  for (const [name, sub] of Object.entries(schema.$defs ?? {})) {
    shapeProblems(sub, `${where}.$defs.${name}`, problems);
  }
}

function strictProblems(tools) {
  // Ajv in strict mode (unknown keywords, ambiguous types, ... are errors), against the
  // draft-07 and the 2020-12 meta-schemas (MCP's default dialect)
  const validators = [new Ajv({ strict: true }), new Ajv2020({ strict: true })];
  const problems = [];
  for (const tool of tools) {
    for (const which of ["inputSchema", "outputSchema"]) {
      for (const ajv of validators) {
        try {
          ajv.compile(tool[which]);
        } catch (error) {
          problems.push(`${tool.name}: ${which}: ${error.message}`);
        }
      }
      shapeProblems(tool[which], `${tool.name}.${which}`, problems);
    }
    if (!tool.title) problems.push(`${tool.name}: no title`);
    const hints = tool.annotations ?? {};
    for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]) {
      if (typeof hints[hint] !== "boolean") problems.push(`${tool.name}: no ${hint}`);
    }
    if (!tool.description || /\n|\s{2,}/.test(tool.description)) {
      problems.push(`${tool.name}: description missing or indented`);
    }
    for (const [name, schema] of Object.entries(tool.inputSchema.properties ?? {})) {
      if (!schema.description) problems.push(`${tool.name}.${name}: no description`);
    }
  }
  return problems;
}

async function list() {
  const client = await connect(commands[0]);
  try {
    const { tools } = await client.listTools();
    return { tools, problems: strictProblems(tools) };
  } finally {
    await client.close();
  }
}

async function calls() {
  const steps = await readStdin();
  const client = await connect(commands[0]);
  const results = [];
  try {
    await client.listTools();
    for (const step of steps) {
      try {
        const result = await client.callTool(
          { name: step.tool, arguments: step.arguments ?? {} },
          undefined,
          { timeout: TIMEOUT_MS },
        );
        results.push({
          isError: result.isError === true,
          structuredContent: result.structuredContent ?? null,
          text: result.content.map((c) => c.text).join(""),
        });
      } catch (error) {
        results.push({ thrown: String(error.message ?? error) });
      }
    }
  } finally {
    await client.close();
  }
  return results;
}

function nested(depth) {
  let value = "bottom";
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

async function hostile() {
  const emoji = "\u{1F600}";
  const sliced = "a" + emoji.slice(0, 1) + "b"; // a lone high surrogate, as JavaScript slices
  const call = (id, name, args) => ({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: args },
  });
  // Each shape twice: before the first tools/call (answered while the SDK is still being
  // imported) and after it (in front of the SDK's parser).
  const shapes = (id, tag) => ({
    [`lone_surrogate${tag}`]: call(id, "write_memory", { memory_name: "m", content: sliced }),
    [`lone_surrogate_in_name${tag}`]: call(id + 1, "read_memory", { memory_name: emoji.slice(1) }),
    [`nested_200${tag}`]: call(id + 2, "session_save", { context: { deep: nested(200) } }),
    [`nested_1000${tag}`]: call(id + 3, "session_save", { context: { deep: nested(1000) } }),
    [`params_array${tag}`]: { jsonrpc: "2.0", id: id + 4, method: "tools/call", params: ["x"] },
    [`no_jsonrpc${tag}`]: { id: id + 5, method: "tools/call", params: { name: "session_status" } },
    [`jsonrpc_1_0${tag}`]: { jsonrpc: "1.0", id: id + 6, method: "ping" },
    [`ping${tag}`]: { jsonrpc: "2.0", id: id + 8, method: "ping" },
  });
  const cases = {
    ...shapes(10, "_early"),
    first_call: call(30, "session_status", {}),
    ...shapes(40, ""),
    megabyte_name: call(50, "read_memory", { memory_name: "n".repeat(1 << 20) }),
    megabyte_content: call(51, "write_memory", { memory_name: "m", content: "c".repeat(1 << 20) }),
  };
  const transport = transportFor(commands[0]);
  const waiting = new Map();
  transport.onmessage = (message) => {
    const entry = waiting.get(message.id);
    if (entry) entry.resolve(message);
  };
  await transport.start();
  const ask = (message) =>
    new Promise((resolve) => {
      const started = performance.now();
      const timer = setTimeout(() => resolve({ ms: null, answer: null }), 5000);
      waiting.set(message.id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve({ ms: performance.now() - started, answer });
        },
      });
      transport.send(message);
    });
  await ask({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "lifecycle-tests", version: "1.0.0" },
    },
  });
  await transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const out = {};
  for (const [name, message] of Object.entries(cases)) {
    const { ms, answer } = await ask(message);
    const text = answer === null ? "" : JSON.stringify(answer);
    out[name] = { ms, id: answer?.id ?? null, error: answer?.error ?? null, bytes: text.length };
    if (answer?.result !== undefined) out[name].result = answer.result;
  }
  await transport.close();
  return out;
}

async function concurrent() {
  const { n } = await readStdin();
  const clients = await Promise.all(commands.map(connect));
  try {
    await clients[0].callTool({ name: "session_load", arguments: { command: "both" } });
    const work = clients.map(async (client, who) => {
      const answers = [];
      for (let i = 0; i < n; i++) {
        const task = { task_id: `c${who}-t${i}`, description: `client ${who} task ${i}` };
        answers.push(client.callTool({ name: "add_task", arguments: task }));
        answers.push(client.callTool({ name: "session_save", arguments: { phase: `c${who}` } }));
      }
      return (await Promise.all(answers)).filter((r) => r.isError).map((r) => r.content[0].text);
    });
    const errors = (await Promise.all(work)).flat();
    const status = await clients[1].callTool({ name: "session_status", arguments: {} });
    return { errors, open_tasks: status.structuredContent.open_tasks };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

const modes = { list, calls, hostile, concurrent };
if (!(mode in modes) || cut === -1) {
  console.error(`usage: node sdk_client.mjs ${Object.keys(modes).join("|")} -- COMMAND [ARG...]`);
  process.exit(2);
}
try {
  const text = JSON.stringify(await modes[mode]());
  // exit only once the whole answer is written: a pipe takes it in 64 KiB pieces
  process.stdout.write(text + "\n", () => process.exit(0));
} catch (error) {
  console.error(`sdk_client ${mode}: ${error?.stack ?? error}`);
  process.exit(1);
}
