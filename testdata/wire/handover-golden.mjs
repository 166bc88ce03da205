// Writes handover-golden.jsonl: golden frames built the way a REPRAM TS node
// builds them, with JavaScript's own JSON.stringify and Node's HMAC, so the Go
// codec is checked against an independent implementation.
//
//	node testdata/wire/handover-golden.mjs > testdata/wire/handover-golden.jsonl
import { createHmac } from "node:crypto";

const secret = "harness-test-secret";
const sign = (key, payload) => createHmac("sha256", key).update(payload).digest("hex");

// frame builds {"type","payload","signature"?} in that key order.
function frame(type, payload, key) {
  const env = { type, payload };
  if (key) env.signature = sign(key, JSON.stringify(payload));
  return JSON.stringify(env);
}

const hello = {
  node_id: "transient-7", enclave: "eu-west", address: "10.0.0.7", http_port: 8080,
  capabilities: { inbound: "false" },
};
const sync = (from, id, port, enclave) => {
  const node_info = { id, address: "10.0.1." + (port % 100), port, http_port: port - 1000 };
  if (enclave !== undefined) node_info.enclave = enclave;
  return { type: "SYNC", from, timestamp: 1795600000, message_id: "", node_info };
};
const welcome = {
  topology: [sync("sub-a", "sub-a", 19481, "eu-west"), sync("sub-a", "sub-b", 19482)],
  your_position: { depth: 1, parent_id: "sub-a" },
};
const atCapacity = {
  reason: "at capacity",
  alternative_parents: [
    { id: "sub-b", address: "10.0.1.82", http_port: 18482, enclave: "eu-west" },
    { id: "sub-c", address: "sub-c.example.net", http_port: 443, enclave: "us-east" },
  ],
};
const put = {
  type: "PUT", from: "sub-b", timestamp: 1795600001, message_id: "1795600001123456789-42",
  key: "greeting", data: Buffer.from([0x00, 0xff, 0xfe, 0x68, 0x69, 0x0a]).toString("base64"), ttl: 300,
};
// Every character class JSON.stringify treats specially: HTML characters and
// U+2028/U+2029 stay raw, control characters other than \b\f\n\r\t become
// \u00XX, U+007F and non-ASCII stay raw, quote and backslash are escaped.
const putStrings = {
  type: "PUT", from: "nœud-日本-🚀", timestamp: 1795600002,
  message_id: "1795600002000000000-1",
  key: "<script>a&b</script>\u2028\u2029 \u0000\u0001\u001f\b\f\n\r\t\u007f\"\\/é",
  data: Buffer.from("<>&\u2028").toString("base64"), ttl: 60,
};
const ack = {
  type: "ACK", from: "sub-a", timestamp: 1795600003, message_id: "1795600001123456789-42",
  to: "transient-7", key: "greeting",
};
const ping = { type: "PING", from: "sub-a", timestamp: 1795600004, message_id: "1795600004000000000-7" };
const pong = { type: "PONG", from: "transient-7", timestamp: 1795600004, message_id: "1795600004000000000-7", to: "sub-a" };
const topo = sync("sub-c", "sub-c", 19483, "us-east");
topo.message_id = "1795600005000000000-3";

const signedPut = frame("put", put, secret);
const sig = JSON.parse(signedPut).signature;
const resigned = (s) => signedPut.replace(sig, s);

const rows = [
  // Valid signed frames: decode with the secret.
  ["hello", secret, frame("hello", hello, secret), ""],
  ["welcome", secret, frame("welcome", welcome, secret), ""],
  ["goodbye_at_capacity", secret, frame("goodbye", atCapacity, secret), ""],
  ["goodbye_shutdown_no_alternatives", secret, frame("goodbye", { reason: "shutdown", alternative_parents: [] }, secret), ""],
  ["put_data", secret, signedPut, ""],
  ["put_js_strings", secret, frame("put", putStrings, secret), ""],
  ["ack", secret, frame("ack", ack, secret), ""],
  ["ping", secret, frame("ping", ping, secret), ""],
  ["pong", secret, frame("pong", pong, secret), ""],
  ["topology_sync", secret, frame("topology_sync", topo, secret), ""],
  // Valid unsigned frames: decode without a secret (a cluster with no secret).
  ["hello_unsigned", "", frame("hello", hello), ""],
  ["goodbye_at_capacity_unsigned", "", frame("goodbye", atCapacity), ""],
  ["put_data_unsigned", "", frame("put", put), ""],
  ["put_js_strings_unsigned", "", frame("put", putStrings), ""],
  // Invalid frames under the secret.
  ["hello_wrong_secret", secret, frame("hello", hello, "another-secret"), "bad_signature"],
  ["put_signature_truncated", secret, resigned(sig.slice(0, 62)), "bad_signature"],
  ["put_signature_too_long", secret, resigned(sig + "00"), "bad_signature"],
  ["put_signature_not_hex", secret, resigned("zz" + sig.slice(2)), "bad_signature"],
  ["put_signature_empty", secret, resigned(""), "unsigned"],
  ["put_unsigned", secret, frame("put", put), "unsigned"],
  ["put_payload_tampered", secret, signedPut.replace('"ttl":300', '"ttl":301'), "bad_signature"],
  ["unknown_type", secret, frame("subscribe", ping, secret), "unknown_type"],
  ["null", secret, "null", "malformed"],
];
for (const [name, key, f, err] of rows) {
  console.log(JSON.stringify({ name, secret: key, frame: f, err }));
}
